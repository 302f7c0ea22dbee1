import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { BuiltinTrainer } from '../gpu-runner/backends/builtin.js';
import { generateYoloDataset } from '../vision/synthetic-dataset.js';
import type { BenchReport } from './run-all.js';

const metricsSchema = z
  .object({
    mAP50: z.number(),
    mAP50_95: z.number(),
    train_images_per_second: z.number(),
    time_to_target_seconds: z.number().nullable(),
    total_seconds: z.number(),
    cpu_seconds: z.number().optional(),
    epochs_run: z.number(),
  })
  .passthrough();

/** Seconds of training each run gets (the issue's budget is 10 minutes); BENCH_TRAIN_SECONDS overrides. */
const BUDGET = Number(process.env.BENCH_TRAIN_SECONDS ?? 600);
const HARDHAT = process.env.HARDHAT_DIR ?? path.resolve('../shared/datasets/hardhat-real');

async function train(
  data: string,
  out: string,
  extra: Record<string, number>,
  epochs: number,
  imgsz: number,
) {
  const logs: string[] = [];
  const result = await new BuiltinTrainer({ threads: 2, device: 'cpu' }).train(
    {
      dataDir: data,
      dataYaml: path.join(data, 'data.yaml'),
      outDir: out,
      classNames: [],
      config: {
        backend: 'builtin',
        model: 'builtin-n',
        epochs,
        imgsz,
        batch: 16,
        seed: 0,
        lr: 0.003,
        extra: { 'max-seconds': BUDGET, ...extra },
      },
    },
    { onLog: (l) => logs.push(l), onMetrics: () => undefined },
  ).done;
  if (result.status !== 'succeeded')
    throw new Error(`training failed: ${result.message} ${logs.slice(-5).join(' | ')}`);
  return metricsSchema.parse(JSON.parse(await readFile(path.join(out, 'metrics.json'), 'utf8')));
}

/** Built-in detector: time to mAP50 ≥ 0.85 on helmets-demo (test split) and images/s, plus hardhat-real. */
export async function run(): Promise<BenchReport> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'train-bench-'));
  const notes: string[] = [
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${os.cpus().length} CPUs`,
  ];
  try {
    const data = path.join(dir, 'helmets-demo');
    await generateYoloDataset({
      outDir: data,
      seed: 1,
      counts: { train: 1200, val: 200, test: 300 },
      size: 320,
    });
    const demo = await train(data, path.join(dir, 'out-demo'), { 'target-map50': 0.85 }, 12, 256);
    const results = [
      {
        label: 'helmets-demo time to val mAP50 ≥ 0.85',
        value: demo.time_to_target_seconds ?? Number.NaN,
        unit: 's',
      },
      { label: 'helmets-demo test mAP50', value: demo.mAP50, unit: '' },
      { label: 'helmets-demo test mAP50-95', value: demo.mAP50_95, unit: '' },
      {
        label: 'training throughput (256 px, batch 16, 2 threads)',
        value: demo.train_images_per_second,
        unit: 'images/s',
      },
    ];
    if (demo.cpu_seconds !== undefined)
      results.push({ label: 'helmets-demo CPU time used', value: demo.cpu_seconds, unit: 'CPU-s' });
    if (existsSync(path.join(HARDHAT, 'data.yaml'))) {
      const hh = await train(HARDHAT, path.join(dir, 'out-hardhat'), {}, 40, 320);
      results.push(
        { label: 'hardhat-real hold-out mAP50 (no target)', value: hh.mAP50, unit: '' },
        { label: 'hardhat-real hold-out mAP50-95', value: hh.mAP50_95, unit: '' },
      );
    } else notes.push(`hardhat-real not found at ${HARDHAT} (set HARDHAT_DIR)`);
    notes.push(
      `load average at end: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    return {
      name: 'training',
      results,
      ratios: [
        {
          label: 'time to mAP50 0.85 / 600 s budget',
          value: (demo.time_to_target_seconds ?? Number.POSITIVE_INFINITY) / 600,
          target: '≤ 1',
        },
      ],
      notes,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const out = await run();
  for (const r of out.results) console.log(`${out.name}: ${r.label}: ${r.value} ${r.unit}`);
  for (const r of out.ratios)
    console.log(`${out.name}: ${r.label}: ${r.value}${r.target ? ` (target ${r.target})` : ''}`);
  for (const n of out.notes ?? []) console.log(`${out.name}: ${n}`);
}
