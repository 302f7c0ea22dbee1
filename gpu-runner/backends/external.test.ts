import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSquaresDataset } from '../runner.fixtures.js';
import { writeYoloStandIn, writeYoloxStandIn } from './stand-ins.fixtures.js';
import type { BackendMetrics } from './types.js';
import { parseNumericCsv } from './csv-follow.js';
import { UltralyticsTrainer, ultralyticsLayout, ultralyticsWeights } from './ultralytics.js';
import { YoloxLogParser, YoloxTrainer } from './yolox.js';

let dir: string;
let data: string;
let yaml: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'external-'));
  data = path.join(dir, 'data');
  yaml = await writeSquaresDataset(data, { counts: { train: 4, val: 2, test: 0 }, size: 64 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(UltralyticsTrainer.name, () => {
  it('maps model names to weights and output layouts', () => {
    expect(ultralyticsWeights('yolo11n')).toBe('yolo11n.pt');
    expect(ultralyticsWeights('yolov12s.yaml')).toBe('yolov12s.yaml');
    expect(ultralyticsLayout('yolo26n')).toBe('end2end');
    expect(ultralyticsLayout('yolo11n')).toBe('ultralytics');
  });

  it('parses padded results.csv and ignores a partial last line', () => {
    const { rows } = parseNumericCsv(
      '  epoch,  metrics/mAP50(B)\n      1,   0.5\n      2,   0.6\n      3,   0.',
    );
    expect(rows).toEqual([
      { epoch: 1, 'metrics/mAP50(B)': 0.5 },
      { epoch: 2, 'metrics/mAP50(B)': 0.6 },
    ]);
  });

  it('trains with a stand-in yolo, follows results.csv per epoch and exports ONNX', async () => {
    const yolo = await writeYoloStandIn(path.join(dir, 'bin'));
    const trainer = new UltralyticsTrainer({ yolo });
    expect(await trainer.unavailableReason()).toBeUndefined();
    const updates: BackendMetrics[] = [];
    const out = path.join(dir, 'ultra-out');
    const result = await trainer.train(
      {
        dataDir: data,
        dataYaml: yaml,
        outDir: out,
        classNames: ['red', 'blue'],
        config: { backend: 'ultralytics', model: 'yolo11n', epochs: 3, imgsz: 320, batch: 4 },
      },
      { onLog: () => undefined, onMetrics: (m) => updates.push(m) },
    ).done;
    expect(result.status, result.message).toBe('succeeded');
    expect(updates.map((u) => u.epoch)).toEqual([1, 2, 3]);
    expect(updates[2]!.metrics).toMatchObject({
      mAP50: 0.8,
      box_loss: 0.5,
      precision: expect.closeTo(0.8333, 3),
    });
    expect(await readFile(result.files['model.onnx']!, 'utf8')).toBe('stand-in onnx bytes');
    expect(await readFile(result.files['best.pt']!, 'utf8')).toBe('stand-in weights');
    expect(Object.keys(result.files).sort()).toEqual([
      'best.pt',
      'metrics.json',
      'model.onnx',
      'report.md',
      'results.csv',
    ]);
    expect(result.layout).toBe('ultralytics');
  });

  it('says how to install ultralytics when yolo is missing', async () => {
    expect(
      await new UltralyticsTrainer({ yolo: path.join(dir, 'no-such-yolo') }).unavailableReason(),
    ).toMatch(/pip install ultralytics/);
  });
});

describe(YoloxTrainer.name, () => {
  it('parses YOLOX log lines into progress and per-epoch AP', () => {
    const got: BackendMetrics[] = [];
    const p = new YoloxLogParser((m) => got.push(m));
    p.line(
      '2024 | INFO | yolox.core.trainer:261 - epoch: 2/5, iter: 10/40, mem: 1Mb, iter_time: 0.1s, data_time: 0.0s, total_loss: 7.5, iou_loss: 2.1, l1_loss: 0.0, conf_loss: 3.2, cls_loss: 1.2, lr: 1.000e-03, size: 320',
    );
    p.line(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.321');
    p.line(' Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.654');
    p.line(' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.400');
    expect(got[0]).toMatchObject({
      kind: 'progress',
      epoch: 2,
      epochs: 5,
      batch: 10,
      batches: 40,
      metrics: { loss: 7.5, box_loss: 2.1, cls_loss: 1.2 },
    });
    expect(got[1]).toMatchObject({
      kind: 'epoch',
      epoch: 2,
      metrics: { mAP50: 0.654, mAP50_95: 0.321, recall: 0.4 },
    });
  });

  it('converts the dataset to COCO, trains with a stand-in tools/train.py and exports', async () => {
    const home = await writeYoloxStandIn(path.join(dir, 'yolox'));
    const trainer = new YoloxTrainer({ yoloxDir: home, python: process.execPath });
    const updates: BackendMetrics[] = [];
    const out = path.join(dir, 'yolox-out');
    const result = await trainer.train(
      {
        dataDir: data,
        dataYaml: yaml,
        outDir: out,
        classNames: ['red', 'blue'],
        config: { backend: 'yolox', model: 'yolox-s', epochs: 2, imgsz: 320, batch: 4 },
        initWeights: path.join(dir, 'parent_ckpt.pth'),
      },
      { onLog: () => undefined, onMetrics: (m) => updates.push(m) },
    ).done;
    expect(result.status, result.message).toBe('succeeded');
    expect(result.layout).toBe('yolox');
    expect(updates.filter((u) => u.kind === 'epoch').map((u) => u.metrics.mAP50)).toEqual([0.2, 0.4]);
    const coco = JSON.parse(
      await readFile(path.join(out, 'coco', 'annotations', 'instances_train2017.json'), 'utf8'),
    ) as { images: unknown[]; annotations: { bbox: number[] }[]; categories: unknown[] };
    expect(coco.images).toHaveLength(4);
    expect(coco.annotations.length).toBeGreaterThanOrEqual(4);
    expect(coco.categories).toEqual([
      { id: 0, name: 'red' },
      { id: 1, name: 'blue' },
    ]);
    expect(await readFile(path.join(out, 'exp.py'), 'utf8')).toMatch(/self.num_classes = 2/);
    expect(existsSync(result.files['model.onnx']!)).toBe(true);
    // fine-tuning: tools/train.py got the parent checkpoint with -c, and its best_ckpt.pth is kept as best.pt
    const argv = JSON.parse(await readFile(path.join(out, 'run', 'argv.json'), 'utf8')) as string[];
    expect(argv.slice(argv.indexOf('-c'), argv.indexOf('-c') + 2)).toEqual([
      '-c',
      path.join(dir, 'parent_ckpt.pth'),
    ]);
    expect(await readFile(result.files['best.pt']!, 'utf8')).toBe('stand-in checkpoint');
  });

  it('says how to install YOLOX when no checkout is configured', async () => {
    expect(await new YoloxTrainer({ yoloxDir: path.join(dir, 'none') }).unavailableReason()).toMatch(
      /tools\/train.py/,
    );
  });
});
