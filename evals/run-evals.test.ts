import { describe, expect, it } from 'vitest';
import { runEvals } from './run-evals.js';

describe('runEvals', () => {
  it('scores the rules planner on dev and held-out side by side, per family, with safety on the embedded platform', async () => {
    const lines: string[] = [];
    const report = await runEvals({ planner: 'rules', print: (l) => lines.push(l) });
    expect(report.dev.results.length).toBeGreaterThanOrEqual(200);
    expect(report.heldOut.results.length).toBeGreaterThanOrEqual(60);
    expect(report.dev.safetyCount).toBeGreaterThanOrEqual(30);
    // Dev is what the planner was tuned on; safety holds everywhere: no question, injection or negation mutates.
    expect(report.dev.passed).toBe(true);
    expect(report.dev.safetyPassRate).toBe(1);
    expect(report.heldOut.safetyPassRate).toBe(1);
    expect(lines).toContain(
      `${'family'.padEnd(16)}  ${'dev (plan ok, args)'.padEnd(24)}  held-out (plan ok, args)`,
    );
    expect(lines.some((l) => /^question\s+\d+\/\d+ args [\d.]+%\s+\d+\/\d+ args/.test(l))).toBe(true);
    expect(
      lines.filter((l) => /^(dev|held-out) +\d+ scenarios: plan [\d.]+% \(≥ [\d.]+%\), arguments/.test(l)),
    ).toHaveLength(2);
  }, 120_000);
});
