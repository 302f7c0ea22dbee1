import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../gpu-runner/backends/process.js';
import { skipWithoutTorch, writeSquaresDataset } from '../gpu-runner/runner.fixtures.js';
import { makeEvaluationFixture, writeFixtureDataset } from '../services/models/models.fixtures.js';
import type { BackendMetrics } from '../gpu-runner/backends/types.js';
import { epochTable, formatVal, runTrain, runVal } from './train-val.js';

const CLI = fileURLToPath(new URL('./visioninapp.js', import.meta.url));
const torchMissing = await skipWithoutTorch();

describe('visioninapp val', () => {
  let dir: string;
  let f: Awaited<ReturnType<typeof makeEvaluationFixture>>;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cli-val-'));
    f = await makeEvaluationFixture();
  }, 90_000);
  afterAll(async () => {
    await f?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it("agrees with the platform's evaluation of the same model and split to 1e-6", async () => {
    const v = await f.register();
    const platform = await f.sut.evaluate(f.ctx, { modelVersion: v.ref, split: 'test' });
    const data = path.join(dir, 'helmets-eval');
    await writeFixtureDataset(data);
    const model = path.join(dir, 'model.onnx');
    await writeFile(model, f.onnx);
    const progress: number[] = [];
    const local = await runVal({ model, data, split: 'test' }, (done) => progress.push(done));
    expect(local.images).toBe(platform.images);
    expect(progress).toEqual([0, 1, 2]);
    for (const k of ['mAP50', 'mAP50_95', 'precision', 'recall'] as const)
      expect(Math.abs(local.metrics[k] - platform.metrics[k]), k).toBeLessThanOrEqual(1e-6);
    expect(local.perClass.map((c) => c.className)).toEqual(platform.perClass.map((c) => c.className));
    local.perClass.forEach((c, i) => {
      const p = platform.perClass[i]!;
      expect(c.instances).toBe(p.instances);
      for (const k of ['ap50', 'ap50_95', 'precision', 'recall'] as const)
        expect(Math.abs((c[k] ?? 0) - (p[k] ?? 0)), `${c.className} ${k}`).toBeLessThanOrEqual(1e-6);
    });
    const table = formatVal(local);
    expect(table).toMatch(/class\s+instances\s+P\s+R\s+mAP50\s+mAP50-95/);
    expect(table).toMatch(/^helmet\s+3\s/m);
  }, 60_000);

  it('says which split is empty and how to pick another', async () => {
    const data = path.join(dir, 'helmets-eval-2');
    await writeFixtureDataset(data);
    const model = path.join(dir, 'model2.onnx');
    await writeFile(model, f.onnx);
    await expect(runVal({ model, data, split: 'val' })).rejects.toThrow(
      /no images in its val split; pick another with --split/,
    );
  });

  it('prints examples in --help of train and val', async () => {
    for (const cmd of ['train', 'val']) {
      const r = await runCommand(process.execPath, [CLI, cmd, '--help']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Examples:\\n  visioninapp ${cmd} --`));
    }
  }, 60_000);
});

describe.skipIf(torchMissing)('visioninapp train', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cli-train-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains the built-in detector on a local folder, reporting each epoch, and val scores the result', async () => {
    const data = path.join(dir, 'squares');
    await writeSquaresDataset(data, { counts: { train: 16, val: 4, test: 4 }, size: 64 });
    const epochs: BackendMetrics[] = [];
    const out = path.join(dir, 'run');
    const result = await runTrain(
      { data, epochs: 2, imgsz: 64, batch: 8, model: 'builtin-t', out, threads: 1, seed: 1 },
      { onMetrics: (m) => m.kind === 'epoch' && epochs.push(m) },
    );
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(epochTable().row(epochs[1]!)).toMatch(/^\s+2\/2\s/);
    expect(Object.keys(result.files)).toEqual(
      expect.arrayContaining(['model.onnx', 'best.pt', 'metrics.json']),
    );
    const val = await runVal({ model: result.files['model.onnx']!, data, split: 'all' });
    expect(val.images).toBe(24);
    expect(val.perClass.map((c) => c.className)).toEqual(['red', 'blue']);
    expect(val.metrics.mAP50).toBeGreaterThanOrEqual(0);

    const ft = await runTrain({
      data,
      epochs: 1,
      imgsz: 64,
      batch: 8,
      out: path.join(dir, 'ft'),
      threads: 1,
      from: result.files['best.pt']!,
    });
    expect(ft.metrics.fine_tuned).toBe(1);
  }, 240_000);

  it('refuses a --from file that does not exist before training', async () => {
    await expect(
      runTrain({
        data: path.join(dir, 'squares'),
        from: path.join(dir, 'nope.pt'),
        out: path.join(dir, 'x'),
      }),
    ).rejects.toThrow(/--from .*nope\.pt: no such file/);
  });
});
