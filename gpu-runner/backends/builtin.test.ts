import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch, writeSquaresDataset } from '../runner.fixtures.js';
import { runCommand } from './process.js';
import { BUILTIN_TRAIN_SCRIPT, BuiltinTrainer } from './builtin.js';
import type { BackendMetrics } from './types.js';

const skip = await skipWithoutTorch();

describe.skipIf(skip)(BuiltinTrainer.name, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'builtin-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains a few epochs, exports an Ultralytics-layout ONNX that onnxruntime runs and that matches PyTorch', async () => {
    const data = path.join(dir, 'data');
    const yaml = await writeSquaresDataset(data, { counts: { train: 48, val: 12, test: 12 }, size: 64 });
    const out = path.join(dir, 'out');
    const check = path.join(dir, 'check');
    const updates: BackendMetrics[] = [];
    const logs: string[] = [];
    const run = new BuiltinTrainer({ threads: 1 }).train(
      {
        dataDir: data,
        dataYaml: yaml,
        outDir: out,
        classNames: ['red', 'blue'],
        config: {
          backend: 'builtin',
          model: 'builtin-n',
          epochs: 3,
          imgsz: 64,
          batch: 8,
          seed: 1,
          extra: { 'check-out': check },
        },
      },
      { onLog: (l) => logs.push(l), onMetrics: (m) => updates.push(m) },
    );
    const result = await run.done;
    expect(result.status, `${result.message} ${logs.join('\n')}`).toBe('succeeded');
    expect(Object.keys(result.files).sort()).toEqual([
      'best.pt',
      'metrics.json',
      'model.onnx',
      'report.md',
      'results.csv',
    ]);
    const epochs = updates.filter((u) => u.kind === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(Object.keys(epochs[0]!.metrics)).toEqual(
      expect.arrayContaining([
        'box_loss',
        'cls_loss',
        'mAP50',
        'mAP50_95',
        'precision',
        'recall',
        'lr',
        'seconds',
      ]),
    );
    expect(updates.some((u) => u.kind === 'progress' && u.batches === 6)).toBe(true);
    expect((await readFile(result.files['results.csv']!, 'utf8')).trim().split('\n')).toHaveLength(4);
    expect(result.metrics.train_images_per_second).toBeGreaterThan(0);

    const session = await ort.InferenceSession.create(result.files['model.onnx']!);
    expect(session.inputNames).toEqual(['images']);
    expect(session.outputNames).toEqual(['output0']);
    const shapes = JSON.parse(await readFile(path.join(check, 'check.json'), 'utf8')) as {
      input: number[];
      output: number[];
    };
    expect(shapes.output).toEqual([1, 4 + 2, 8 * 8 + 4 * 4 + 2 * 2]);
    const toF32 = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    const input = toF32(await readFile(path.join(check, 'input.f32')));
    const expected = toF32(await readFile(path.join(check, 'output.f32')));
    const { output0 } = await session.run({ images: new ort.Tensor('float32', input, shapes.input) });
    expect(output0!.dims).toEqual(shapes.output);
    const got = output0!.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1e-3);
    // scores are sigmoid'ed probabilities, boxes in input pixels
    for (let i = 4 * 84; i < got.length; i++) expect(got[i]! >= 0 && got[i]! <= 1).toBe(true);
    await session.release();

    const meta = await runCommand('/usr/bin/python3', [
      '-c',
      `import onnx,json; m=onnx.load(${JSON.stringify(result.files['model.onnx'])}); print(json.dumps({p.key: p.value for p in m.metadata_props}))`,
    ]);
    const props = JSON.parse(meta.stdout) as Record<string, string>;
    expect(JSON.parse(props.names!)).toEqual({ 0: 'red', 1: 'blue' });
    expect(JSON.parse(props.imgsz!)).toEqual([64, 64]);
    expect(props).toMatchObject({ layout: 'ultralytics', task: 'detect', stride: '32' });
  }, 120_000);

  it('matches class-head rows by name when loading a checkpoint: a known class keeps its row, a new one its fresh start', async () => {
    const script = [
      'import json, sys, torch',
      `sys.path.insert(0, ${JSON.stringify(path.dirname(BUILTIN_TRAIN_SCRIPT))})`,
      'from model import Detector, class_head_keys, load_matched',
      'torch.manual_seed(0)',
      'old = Detector(2, 0.25)',
      'for k in class_head_keys(old): torch.nn.init.normal_(old.state_dict()[k])',
      'new = Detector(2, 0.25)',
      'fresh = {k: v.clone() for k, v in new.state_dict().items()}',
      "kept, added, skipped = load_matched(new, old.state_dict(), ['red', 'blue'], ['blue', 'green'])",
      'sd, od = new.state_dict(), old.state_dict()',
      'heads = class_head_keys(new)',
      'print(json.dumps({"kept": kept, "added": added, "skipped": skipped,',
      '  "blue_from_old_row_1": all(torch.equal(sd[k][0], od[k][1]) for k in heads),',
      '  "green_fresh": all(torch.equal(sd[k][1], fresh[k][1]) for k in heads),',
      '  "backbone_copied": torch.equal(sd["stem.0.conv.weight"], od["stem.0.conv.weight"])}))',
    ].join('\n');
    const r = await runCommand('/usr/bin/python3', ['-c', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      kept: ['blue'],
      added: ['green'],
      skipped: [],
      blue_from_old_row_1: true,
      green_fresh: true,
      backbone_copied: true,
    });
  }, 60_000);

  it('fine-tunes from a best.pt it wrote, saying which classes carried over, and keeps the checkpoint', async () => {
    const data = path.join(dir, 'ft');
    const yaml = await writeSquaresDataset(data, { counts: { train: 16, val: 4, test: 0 }, size: 64 });
    const job = (outDir: string, dataYaml: string, initWeights?: string) => ({
      dataDir: data,
      dataYaml,
      outDir,
      classNames: [],
      ...(initWeights ? { initWeights } : {}),
      config: { backend: 'builtin' as const, model: 'builtin-t', epochs: 1, imgsz: 64, batch: 8, seed: 1 },
    });
    const logs: string[] = [];
    const events = { onLog: (l: string) => logs.push(l), onMetrics: () => undefined };
    const first = await new BuiltinTrainer({ threads: 1 }).train(job(path.join(dir, 'ft-1'), yaml), events)
      .done;
    expect(first.status, logs.join('\n')).toBe('succeeded');
    expect(first.files['best.pt']).toBeDefined();
    // the same pictures, where class 1 is now called "green" and class 0 "blue"
    const renamed = path.join(data, 'renamed.yaml');
    await writeFile(
      renamed,
      (await readFile(yaml, 'utf8')).replace(/- red\n(\s*)- blue/, '- blue\n$1- green'),
    );
    logs.length = 0;
    const second = await new BuiltinTrainer({ threads: 1 }).train(
      job(path.join(dir, 'ft-2'), renamed, first.files['best.pt']),
      events,
    ).done;
    expect(second.status, logs.join('\n')).toBe('succeeded');
    expect(logs.join('\n')).toMatch(
      /fine-tuning from best\.pt \(red, blue\): classes transferred: blue; new classes with a fresh head row: green/,
    );
    expect(second.metrics.fine_tuned).toBe(1);
    expect(second.files['best.pt']).toBeDefined();
  }, 180_000);

  it('refuses a --from file that is not a built-in checkpoint, saying what to pass', async () => {
    const data = path.join(dir, 'ft-bad');
    const yaml = await writeSquaresDataset(data, { counts: { train: 4, val: 2, test: 0 }, size: 64 });
    const bogus = path.join(dir, 'bogus.pt');
    await writeFile(bogus, 'not a checkpoint');
    const result = await new BuiltinTrainer({ threads: 1 }).train(
      {
        dataDir: data,
        dataYaml: yaml,
        outDir: path.join(dir, 'out-ft-bad'),
        classNames: [],
        initWeights: bogus,
        config: { backend: 'builtin', model: 'builtin-t', epochs: 1, imgsz: 64, batch: 4 },
      },
      { onLog: () => undefined, onMetrics: () => undefined },
    ).done;
    expect(result.status).toBe('failed');
    expect(result.message).toMatch(
      /is not a PyTorch checkpoint.*pass the best\.pt of an earlier built-in training/,
    );
  }, 60_000);

  it('fails with a clear message when no image has a label', async () => {
    const data = path.join(dir, 'nolabels');
    const yaml = await writeSquaresDataset(data, {
      counts: { train: 6, val: 2, test: 0 },
      size: 64,
      labels: false,
    });
    const run = new BuiltinTrainer({ threads: 1 }).train(
      {
        dataDir: data,
        dataYaml: yaml,
        outDir: path.join(dir, 'out-nolabels'),
        classNames: ['red', 'blue'],
        config: { backend: 'builtin', model: 'builtin-n', epochs: 1, imgsz: 64, batch: 4 },
      },
      { onLog: () => undefined, onMetrics: () => undefined },
    );
    const result = await run.done;
    expect(result.status).toBe('failed');
    expect(result.message).toMatch(/no labels/);
  }, 30_000);

  it('stops within 5 seconds of a cancel (SIGTERM)', async () => {
    const data = path.join(dir, 'cancel');
    const yaml = await writeSquaresDataset(data, { counts: { train: 64, val: 8, test: 0 }, size: 64 });
    let progressed = false;
    const run = new BuiltinTrainer({ threads: 1 }).train(
      {
        dataDir: data,
        dataYaml: yaml,
        outDir: path.join(dir, 'out-cancel'),
        classNames: ['red', 'blue'],
        config: { backend: 'builtin', model: 'builtin-n', epochs: 500, imgsz: 64, batch: 4 },
      },
      { onLog: () => undefined, onMetrics: () => (progressed = true) },
    );
    const end = Date.now() + 40_000;
    while (!progressed && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(progressed).toBe(true);
    const t0 = Date.now();
    run.cancel();
    const result = await run.done;
    expect(result.status).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 60_000);

  it('reports how to install PyTorch when the Python lacks it', async () => {
    const t = new BuiltinTrainer({ python: '/nonexistent/python3' });
    expect(await t.unavailableReason()).toMatch(
      /apt-get install python3-torch python3-onnx.*pip install torch onnx/,
    );
  });
});
