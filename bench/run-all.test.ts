import { describe, expect, it } from 'vitest';
import { meetsTarget, missedTargets, renderTable } from './run-all.js';

describe('renderTable', () => {
  it('writes one row per benchmark with every figure, each ratio with its target and ✓/✗, and the machine and load it ran on', () => {
    const machine = { cpus: 2, cpuModel: 'Test CPU', memoryGiB: 24, node: 'v20.0.0', platform: 'linux x64' };
    const table = renderTable([
      {
        file: 'web.bench.ts',
        ranAt: '2026-11-25T18:45:36.000Z',
        seconds: 15,
        loadAverageBefore: 0.4,
        machine,
        report: {
          name: 'web',
          results: [
            { label: 'REST read', value: 2565.4, unit: 'req/s' },
            { label: 'p50', value: 17, unit: 'ms' },
          ],
          ratios: [
            { label: 'REST / healthz', value: 0.2551, target: '>= 0.2' },
            { label: 'chat p50 (ms)', value: 310, target: '≤ 100' },
            { label: 'info', value: 1.5 },
          ],
        },
      },
      {
        file: 'x.bench.ts',
        ranAt: '2026-11-25T19:00:00.000Z',
        seconds: 1,
        loadAverageBefore: 1.5,
        machine,
        report: { name: 'x', results: [{ label: 'tiny', value: 0.0123, unit: 's' }], ratios: [] },
      },
    ]);
    const lines = table.split('\n');
    expect(lines[0]).toBe('Machine: 2 × Test CPU, 24 GiB, Node v20.0.0, linux x64.');
    expect(lines).toContain(
      '| `web.bench.ts` | REST read: **2,565** req/s<br>p50: **17.00** ms | REST / healthz: **0.255** ✓ (target >= 0.2)<br>chat p50 (ms): **310** ✗ (target ≤ 100)<br>info: **1.50** | 2026-11-25 18:45 UTC, 15 s, load 0.4 before |',
    );
    expect(lines).toContain(
      '| `x.bench.ts` | tiny: **0.012** s | — | 2026-11-25 19:00 UTC, 1 s, load 1.5 before |',
    );
  });
});

describe('meetsTarget', () => {
  it('reads every target form the benchmarks use, at and across the bound', () => {
    expect(meetsTarget(5, '≤ 5')).toBe(true);
    expect(meetsTarget(5.01, '≤ 5')).toBe(false);
    expect(meetsTarget(0.2, '<= 0.20')).toBe(true);
    expect(meetsTarget(0.27, '<= 0.20')).toBe(false);
    expect(meetsTarget(0.5, '≥ 0.5')).toBe(true);
    expect(meetsTarget(0.471, '≥ 0.5')).toBe(false);
    expect(meetsTarget(0.9, '>= 0.9')).toBe(true);
    expect(meetsTarget(0, '= 0')).toBe(true);
    expect(meetsTarget(1, '= 0')).toBe(false);
    expect(meetsTarget(1, '< 1')).toBe(false);
    expect(meetsTarget(2, '> 1')).toBe(true);
  });

  it('is undefined without a target, fails a non-finite figure, and refuses a target it cannot read', () => {
    expect(meetsTarget(3, undefined)).toBeUndefined();
    expect(meetsTarget(Number.NaN, '≤ 1')).toBe(false);
    expect(() => meetsTarget(1, 'about 1')).toThrow(/not one of/);
  });

  it('missedTargets lists only the ratios that fall short (what makes npm run bench exit 1)', () => {
    const report = {
      name: 'agent',
      results: [],
      ratios: [
        { label: 'approved step p50 (ms)', value: 7.2, target: '≤ 5' },
        { label: 'read / memory', value: 2 },
        { label: 'ours / official', value: 0.9, target: '≤ 1' },
      ],
    };
    expect(missedTargets('agent.bench.ts', report)).toEqual([
      'agent.bench.ts: approved step p50 (ms) = 7.20 (target ≤ 5)',
    ]);
  });
});
