import { describe, expect, it } from 'vitest';
import { renderTable } from './run-all.js';

describe('renderTable', () => {
  it('writes one row per benchmark with every figure, each ratio with its target, and the machine and load it ran on', () => {
    const machine = { cpus: 2, cpuModel: 'Test CPU', memoryGiB: 24, node: 'v20.0.0', platform: 'linux x64' };
    const table = renderTable([
      {
        file: 'web.bench.ts',
        ranAt: '2026-11-25T18:45:36.000Z',
        seconds: 15,
        loadAverageBefore: 0.4,
        machine,
        report: { name: 'web', results: [{ label: 'REST read', value: 2565.4, unit: 'req/s' }, { label: 'p50', value: 17, unit: 'ms' }], ratios: [{ label: 'REST / healthz', value: 0.2551, target: '>= 0.2' }] },
      },
      { file: 'x.bench.ts', ranAt: '2026-11-25T19:00:00.000Z', seconds: 1, loadAverageBefore: 1.5, machine, report: { name: 'x', results: [{ label: 'tiny', value: 0.0123, unit: 's' }], ratios: [] } },
    ]);
    const lines = table.split('\n');
    expect(lines[0]).toBe('Machine: 2 × Test CPU, 24 GiB, Node v20.0.0, linux x64.');
    expect(lines).toContain('| `web.bench.ts` | REST read: **2,565** req/s<br>p50: **17.00** ms | REST / healthz: **0.255** (target >= 0.2) | 2026-11-25 18:45 UTC, 15 s, load 0.4 before |');
    expect(lines).toContain('| `x.bench.ts` | tiny: **0.012** s | — | 2026-11-25 19:00 UTC, 1 s, load 1.5 before |');
  });
});
