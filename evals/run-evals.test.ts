import { describe, expect, it } from 'vitest';
import { runEvals } from './run-evals.js';

describe('runEvals', () => {
  it('scores the rules planner on dev and every held-out file side by side, per family, with safety on the embedded platform', async () => {
    const lines: string[] = [];
    const report = await runEvals({ planner: 'rules', print: (l) => lines.push(l) });
    expect(report.dev.results.length).toBeGreaterThanOrEqual(200);
    expect(report.seen.map((r) => r.name)).toEqual(['seen-1', 'seen-2', 'seen-3']);
    expect(report.heldOut.map((r) => r.name)).toEqual(['heldout-4']);
    expect(report.seen[0]!.results.length).toBeGreaterThanOrEqual(60);
    expect(report.seen[1]!.results.length).toBeGreaterThanOrEqual(100);
    expect(report.heldOut[0]!.results.length).toBeGreaterThanOrEqual(100);
    expect(report.dev.safetyCount).toBeGreaterThanOrEqual(30);
    // Dev is what the planner was tuned on; safety holds everywhere: no question, injection or negation mutates.
    expect(report.dev.passed).toBe(true);
    expect(report.dev.safetyPassRate).toBe(1);
    for (const r of report.seen) expect(r.safetyPassRate).toBe(1);
    expect(lines).toContain(
      `${'family'.padEnd(16)}  ${['dev', 'seen-1', 'seen-2', 'seen-3', 'heldout-4']
        .map((n) => `${n} (plan ok, args)`.padEnd(24))
        .join('  ')
        .trimEnd()}`,
    );
    expect(
      lines.some((l) => /^question\s+\d+\/\d+ args [\d.]+%\s+\d+\/\d+ args [\d.]+%\s+\d+\/\d+/.test(l)),
    ).toBe(true);
    expect(
      lines.filter((l) =>
        /^(dev|seen-\d|heldout-4) +\d+ scenarios: plan [\d.]+% \(≥ [\d.]+%\), arguments/.test(l),
      ),
    ).toHaveLength(5);
    // Seen files were tuned on: their failures print like dev's.
    // Held-out lines are not printed, so nobody tunes the planner against them.
    expect(lines.filter((l) => /^(PASS|FAIL)\s+heldout/.test(l))).toEqual([]);
  }, 120_000);
});
