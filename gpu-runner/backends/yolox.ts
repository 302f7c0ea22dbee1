import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { spawnLines } from './process.js';
import { report } from './ultralytics.js';
import type { BackendEvents, BackendJob, BackendResult, BackendRun, Trainer } from './types.js';

/** Options of the YOLOX backend. */
export interface YoloxTrainerOptions {
  /** A checkout of Megvii-BaseDetection/YOLOX (with tools/train.py); default `YOLOX_HOME`. */
  yoloxDir?: string;
  /** Python with YOLOX installed (default `TRAIN_PYTHON` or `python3`). */
  python?: string;
  env?: Record<string, string>;
}

/** depth/width of the YOLOX model family by name. */
const SIZES: Record<string, [number, number]> = {
  'yolox-nano': [0.33, 0.25],
  'yolox-tiny': [0.33, 0.375],
  'yolox-s': [0.33, 0.5],
  'yolox-m': [0.67, 0.75],
  'yolox-l': [1.0, 1.0],
  'yolox-x': [1.33, 1.25],
};

/** The exp file YOLOX's tools/train.py loads with `-f`. */
export function yoloxExpFile(o: {
  model: string;
  numClasses: number;
  epochs: number;
  imgsz: number;
  dataDir: string;
  outputDir: string;
}): string {
  const [depth, width] = SIZES[o.model.toLowerCase()] ?? SIZES['yolox-s']!;
  return [
    'import os',
    'from yolox.exp import Exp as BaseExp',
    '',
    '',
    'class Exp(BaseExp):',
    '    def __init__(self):',
    '        super().__init__()',
    `        self.depth = ${depth}`,
    `        self.width = ${width}`,
    `        self.num_classes = ${o.numClasses}`,
    `        self.max_epoch = ${o.epochs}`,
    `        self.input_size = (${o.imgsz}, ${o.imgsz})`,
    `        self.test_size = (${o.imgsz}, ${o.imgsz})`,
    `        self.data_dir = ${JSON.stringify(o.dataDir)}`,
    '        self.train_ann = "instances_train2017.json"',
    '        self.val_ann = "instances_val2017.json"',
    `        self.output_dir = ${JSON.stringify(o.outputDir)}`,
    '        self.exp_name = "run"',
    '        self.eval_interval = 1',
    `        self.no_aug_epochs = ${Math.min(15, Math.max(1, Math.floor(o.epochs / 5)))}`,
    `        self.warmup_epochs = ${Math.min(5, Math.max(1, Math.floor(o.epochs / 10)))}`,
    '',
  ].join('\n');
}

const TRAIN_LINE = /epoch:\s*(\d+)\/(\d+),\s*iter:\s*(\d+)\/(\d+)/;
const LOSS = /(\w+_loss|lr):\s*([0-9.eE+-]+)/g;
const AP_LINE =
  /Average Precision\s+\(AP\) @\[ IoU=(0\.50:0\.95|0\.50)\s+\| area=\s*all \| maxDets=100 \] = ([0-9.-]+)/;
const AR_LINE = /Average Recall\s+\(AR\) @\[ IoU=0\.50:0\.95 \| area=\s*all \| maxDets=100 \] = ([0-9.-]+)/;

/** Turns YOLOX log lines into metrics updates: progress from iteration lines, an epoch update at each COCO evaluation. */
export class YoloxLogParser {
  private epoch = 0;
  private epochs = 1;
  private losses: Record<string, number> = {};
  private ap: Record<string, number> = {};
  /** The metrics of the last completed evaluation. */
  last: Record<string, number> = {};

  constructor(private readonly emit: BackendEvents['onMetrics']) {}

  line(text: string): void {
    const t = TRAIN_LINE.exec(text);
    if (t) {
      this.epoch = Number(t[1]);
      this.epochs = Number(t[2]);
      const losses: Record<string, number> = {};
      for (const m of text.matchAll(LOSS)) losses[m[1] === 'total_loss' ? 'loss' : m[1]!] = Number(m[2]);
      this.losses = { ...(losses.iou_loss !== undefined ? { box_loss: losses.iou_loss } : {}), ...losses };
      this.emit({
        kind: 'progress',
        epoch: this.epoch,
        epochs: this.epochs,
        batch: Number(t[3]),
        batches: Math.max(1, Number(t[4])),
        metrics: this.losses,
      });
      return;
    }
    const a = AP_LINE.exec(text);
    if (a) {
      this.ap[a[1] === '0.50' ? 'mAP50' : 'mAP50_95'] = Number(a[2]);
      return;
    }
    const r = AR_LINE.exec(text);
    if (r && this.ap.mAP50 !== undefined) {
      this.last = { ...this.losses, ...this.ap, recall: Number(r[1]) };
      this.emit({ kind: 'epoch', epoch: this.epoch, epochs: this.epochs, metrics: this.last });
      this.ap = {};
    }
  }
}

/** Writes the COCO annotations YOLOX reads, from a YOLO-layout dataset, and links the image folders. */
export async function yoloToCoco(dataDir: string, classNames: string[], outDir: string): Promise<void> {
  await mkdir(path.join(outDir, 'annotations'), { recursive: true });
  for (const [split, cocoName] of [
    ['train', 'train2017'],
    ['val', 'val2017'],
  ] as const) {
    const imgDir = existsSync(path.join(dataDir, 'images', split))
      ? path.join(dataDir, 'images', split)
      : path.join(dataDir, 'images', 'train');
    const link = path.join(outDir, cocoName);
    if (!existsSync(link)) await symlink(imgDir, link, 'dir');
    const images: { id: number; file_name: string; width: number; height: number }[] = [];
    const annotations: {
      id: number;
      image_id: number;
      category_id: number;
      bbox: number[];
      area: number;
      iscrowd: 0;
    }[] = [];
    const files = (await readdir(imgDir)).filter((f) => /\.(jpe?g|png|bmp|webp)$/i.test(f)).sort();
    for (const [i, file] of files.entries()) {
      const meta = await sharp(path.join(imgDir, file))
        .metadata()
        .catch(() => undefined);
      if (!meta?.width || !meta.height) continue;
      const { width, height } = meta;
      images.push({ id: i + 1, file_name: file, width, height });
      const labelFile = path.join(
        path.dirname(path.dirname(imgDir)),
        'labels',
        path.basename(imgDir),
        file.replace(/\.[^.]+$/, '.txt'),
      );
      const text = existsSync(labelFile) ? await readFile(labelFile, 'utf8') : '';
      for (const line of text.split('\n')) {
        const p = line.trim().split(/\s+/).map(Number);
        if (p.length < 5 || p.some((v) => !Number.isFinite(v))) continue;
        const [c, cx, cy, w, h] = p as [number, number, number, number, number];
        const bw = w * width;
        const bh = h * height;
        annotations.push({
          id: annotations.length + 1,
          image_id: i + 1,
          category_id: c,
          bbox: [cx * width - bw / 2, cy * height - bh / 2, bw, bh],
          area: bw * bh,
          iscrowd: 0,
        });
      }
    }
    const categories = classNames.map((name, id) => ({ id, name }));
    await writeFile(
      path.join(outDir, 'annotations', `instances_${cocoName}.json`),
      JSON.stringify({ images, annotations, categories }),
    );
  }
}

/** YOLOX (Megvii) through its tools/train.py with a generated exp file, then tools/export_onnx.py. */
export class YoloxTrainer implements Trainer {
  readonly name = 'yolox' as const;
  private readonly yoloxDir: string | undefined;
  private readonly python: string;
  private readonly env: Record<string, string>;

  constructor(opts: YoloxTrainerOptions = {}) {
    this.yoloxDir = opts.yoloxDir ?? process.env.YOLOX_HOME;
    this.python = opts.python ?? process.env.TRAIN_PYTHON ?? 'python3';
    this.env = opts.env ?? {};
  }

  async unavailableReason(): Promise<string | undefined> {
    if (this.yoloxDir === undefined)
      return 'the yolox backend needs a YOLOX checkout: `git clone https://github.com/Megvii-BaseDetection/YOLOX && pip install -v -e YOLOX`, then set YOLOX_HOME';
    if (!existsSync(path.join(this.yoloxDir, 'tools', 'train.py')))
      return `YOLOX_HOME=${this.yoloxDir} has no tools/train.py; point it at a YOLOX checkout`;
    return undefined;
  }

  train(job: BackendJob, events: BackendEvents): BackendRun {
    let cancelled = false;
    let current: ReturnType<typeof spawnLines> | undefined;
    const c = job.config;
    const base: Omit<BackendResult, 'status'> = {
      files: {},
      metrics: {},
      layout: 'yolox',
      inputSize: c.imgsz,
    };
    const done = (async (): Promise<BackendResult> => {
      const reason = await this.unavailableReason();
      if (reason !== undefined) return { ...base, status: 'failed', message: reason };
      const yoloxDir = this.yoloxDir!;
      await mkdir(job.outDir, { recursive: true });
      const coco = path.join(job.outDir, 'coco');
      await yoloToCoco(job.dataDir, job.classNames, coco);
      const expFile = path.join(job.outDir, 'exp.py');
      await writeFile(
        expFile,
        yoloxExpFile({
          model: c.model,
          numClasses: job.classNames.length,
          epochs: c.epochs,
          imgsz: c.imgsz,
          dataDir: coco,
          outputDir: job.outDir,
        }),
      );
      const parser = new YoloxLogParser(events.onMetrics);
      const env = {
        ...process.env,
        ...this.env,
        PYTHONPATH: [yoloxDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
      };
      const run = (args: string[]) => {
        current = spawnLines(this.python, args, {
          env,
          cwd: yoloxDir,
          onStdout: (l) => {
            events.onLog(l);
            parser.line(l);
          },
          onStderr: (l) => {
            events.onLog(l);
            parser.line(l); // loguru writes to stderr
          },
        });
        return current.exited;
      };
      const exit = await run([
        path.join(yoloxDir, 'tools', 'train.py'),
        '-f',
        expFile,
        '-d',
        '1',
        '-b',
        String(c.batch),
        '-o',
        // fine-tuning: YOLOX loads every tensor whose shape matches, so a changed class list starts its class head fresh
        ...(job.initWeights !== undefined ? ['-c', job.initWeights] : []),
      ]);
      if (cancelled || exit.stopped) return { ...base, status: 'cancelled' };
      if (exit.code !== 0)
        return {
          ...base,
          status: 'failed',
          message: `YOLOX tools/train.py failed (exit ${exit.code ?? exit.signal}): ${exit.spawnError?.message ?? exit.stderrTail.slice(-3).join(' | ')}`,
        };
      const ckpt = path.join(job.outDir, 'run', 'best_ckpt.pth');
      if (!existsSync(ckpt))
        return { ...base, status: 'failed', message: `YOLOX finished but ${ckpt} is missing; see train.log` };
      const onnx = path.join(job.outDir, 'model.onnx');
      const exp = await run([
        path.join(yoloxDir, 'tools', 'export_onnx.py'),
        '-f',
        expFile,
        '-c',
        ckpt,
        '--output-name',
        onnx,
      ]);
      if (cancelled || exp.stopped) return { ...base, status: 'cancelled' };
      if (exp.code !== 0 || !existsSync(onnx))
        return {
          ...base,
          status: 'failed',
          message: `YOLOX export_onnx.py failed (exit ${exp.code}): ${exp.stderrTail.slice(-3).join(' | ')}`,
        };
      const files: Record<string, string> = {
        'model.onnx': onnx,
        'best.pt': path.join(job.outDir, 'best.pt'),
      };
      await copyFile(ckpt, files['best.pt']!);
      files['metrics.json'] = path.join(job.outDir, 'metrics.json');
      await writeFile(
        files['metrics.json'],
        JSON.stringify(
          { ...parser.last, backend: 'yolox', model: c.model, imgsz: c.imgsz, classes: job.classNames },
          null,
          2,
        ),
      );
      files['report.md'] = path.join(job.outDir, 'report.md');
      await writeFile(files['report.md'], report('YOLOX', c.model, job.classNames, c.epochs, parser.last));
      const log = path.join(job.outDir, 'run', 'train_log.txt');
      if (existsSync(log)) await copyFile(log, path.join(job.outDir, 'yolox_train_log.txt'));
      return { ...base, status: 'succeeded', files, metrics: parser.last };
    })();
    return {
      done,
      cancel() {
        cancelled = true;
        current?.stop(3000);
      },
    };
  }
}
