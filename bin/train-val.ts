import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { BackendMetrics, Trainer } from '../gpu-runner/backends/types.js';
import { PlatformError } from '../core/errors.js';
import { TRAIN_BACKENDS, type TrainBackend } from '../protocol/envelope.js';
import { matchClasses } from '../services/models/model.evaluation.js';
import { DEFAULT_SPLIT, splitForHash } from '../services/datasets/split.js';
import {
  evaluateDetector,
  type DetectorEvaluation,
  type EvaluationImage,
} from '../vision/evaluate-detector.js';
import {
  normalizeBoxes,
  parseYolo,
  parseYoloDataYaml,
  type Split,
  type SourceImage,
} from '../vision/formats/index.js';
import { loadDetector } from '../vision/pipeline.js';
import { progressLine } from './progress.js';

/** Options of `visioninapp val`. */
export const valOptionsSchema = z.object({
  model: z.string().min(1),
  data: z.string().min(1),
  split: z.enum(['train', 'val', 'test', 'all']).default('test'),
  names: z.string().optional(),
  conf: z.coerce.number().min(0).max(1).default(0.25),
  json: z.boolean().optional(),
});
export type ValOptions = z.input<typeof valOptionsSchema>;

/** What `visioninapp val` reports: the platform's evaluation figures for a local model and dataset folder. */
export interface ValResult {
  model: string;
  data: string;
  split: 'train' | 'val' | 'test' | 'all';
  images: number;
  metrics: { mAP50: number; mAP50_95: number; precision: number; recall: number };
  conf: number;
  perClass: Array<{
    className: string;
    instances: number;
    ap50: number | null;
    ap50_95: number | null;
    precision: number;
    recall: number;
  }>;
  ignoredModelClasses: string[];
  inferenceMsPerImage: number;
}

/** A local YOLO folder's images in the split the platform would give them on import, with their boxes. */
async function localImages(
  root: string,
  split: ValResult['split'],
): Promise<{ classNames: string[]; images: Array<{ file: string; source: SourceImage; sha256: string }> }> {
  const paths: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(p);
      else paths.push(p);
    }
  };
  await walk('');
  const parsed = await parseYolo({ paths, readText: (p) => readFile(path.join(root, p), 'utf8') });
  const errors = parsed.issues.filter((i) => i.severity === 'error' && i.kind === 'bad_file');
  if (parsed.images.length === 0)
    throw new PlatformError(
      'invalid_input',
      `no images found under ${root}${errors[0] ? ` (${errors[0].message})` : ''}; pass --data a YOLO folder with data.yaml, images/ and labels/`,
    );
  // as an import does: identical images count once, the source's splits are kept when it has them, else the content hash decides (80/10/10)
  const seen = new Set<string>();
  const all: Array<{ file: string; source: SourceImage; sha256: string; split: Split }> = [];
  const honour = parsed.images.some((i) => i.split !== undefined);
  for (const source of parsed.images) {
    const sha256 = createHash('sha256')
      .update(await readFile(path.join(root, source.image)))
      .digest('hex');
    if (seen.has(sha256)) continue;
    seen.add(sha256);
    all.push({
      file: path.join(root, source.image),
      source,
      sha256,
      split: honour && source.split !== undefined ? source.split : splitForHash(sha256, DEFAULT_SPLIT),
    });
  }
  return {
    classNames: parsed.classNames,
    images: split === 'all' ? all : all.filter((i) => i.split === split),
  };
}

/** Class names from a file: a data.yaml (`names:`), a JSON array, or one name per line. */
async function readNames(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  if (/\.ya?ml$/i.test(file)) {
    const names = parseYoloDataYaml(text, file).classNames;
    if (names === undefined)
      throw new PlatformError('invalid_input', `${file} has no names: list; add names: [helmet, head, ...]`);
    return names;
  }
  if (text.trim().startsWith('[')) return z.array(z.string()).parse(JSON.parse(text));
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/**
 * `visioninapp val`: runs an ONNX detector over a local YOLO dataset's split with the platform's
 * evaluation code (vision/evaluate-detector.ts: the same pipeline, settings and COCO scoring as
 * `evaluate_model`), matching classes by name.
 */
export async function runVal(
  input: ValOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<ValResult> {
  const o = valOptionsSchema.parse(input);
  const root = statSync(o.data).isFile() ? path.dirname(o.data) : o.data;
  if (!existsSync(o.model))
    throw new PlatformError('not_found', `model file ${o.model} not found; pass --model a .onnx file`);
  const { classNames, images } = await localImages(path.resolve(root), o.split);
  if (images.length === 0)
    throw new PlatformError(
      'invalid_input',
      `${root} has no images in its ${o.split} split; pick another with --split (train, val, test or all)`,
    );
  const names = o.names === undefined ? undefined : await readNames(o.names);
  const detector = await loadDetector(await readFile(o.model), names === undefined ? {} : { names });
  let scored: DetectorEvaluation;
  const classMap = matchClasses(
    { ref: path.basename(o.model), classNames: detector.names },
    root,
    classNames,
  );
  try {
    const items: EvaluationImage[] = images.map((i) => ({
      bytes: () => readFile(i.file),
      boxes: (w, h) => normalizeBoxes(i.source, w, h).boxes,
    }));
    onProgress?.(0, items.length);
    scored = await evaluateDetector(detector, items, {
      classMap,
      classCount: classNames.length,
      conf: o.conf,
      onImage: (d) => onProgress?.(d, items.length),
    });
  } finally {
    await detector.dispose();
  }
  const r = scored.evaluation;
  return {
    model: o.model,
    data: root,
    split: o.split,
    images: scored.images,
    metrics: { mAP50: r.map50, mAP50_95: r.map5095, precision: r.precision, recall: r.recall },
    conf: o.conf,
    perClass: r.perClass.map((c) => ({
      className: classNames[c.classId] ?? String(c.classId),
      instances: c.numGt,
      ap50: c.numGt > 0 ? c.ap50 : null,
      ap50_95: c.numGt > 0 ? c.ap5095 : null,
      precision: c.precision,
      recall: c.recall,
    })),
    ignoredModelClasses: detector.names.filter((_, i) => (classMap[i] ?? -1) < 0),
    inferenceMsPerImage: scored.images > 0 ? scored.inferenceMs / scored.images : 0,
  };
}

const f3 = (v: number | null): string => (v === null ? '-' : v.toFixed(3));

/** The `val` result as the table Ultralytics users expect. */
export function formatVal(r: ValResult): string {
  const rows = [
    ['class', 'instances', 'P', 'R', 'mAP50', 'mAP50-95'],
    [
      'all',
      String(r.perClass.reduce((s, c) => s + c.instances, 0)),
      f3(r.metrics.precision),
      f3(r.metrics.recall),
      f3(r.metrics.mAP50),
      f3(r.metrics.mAP50_95),
    ],
    ...r.perClass.map((c) => [
      c.className,
      String(c.instances),
      f3(c.precision),
      f3(c.recall),
      f3(c.ap50),
      f3(c.ap50_95),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
  );
  return [
    `${path.basename(r.model)} on ${r.data} (${r.split} split, ${r.images} images, P/R at conf ${r.conf}, ${r.inferenceMsPerImage.toFixed(1)} ms/image)`,
    ...lines,
    ...(r.ignoredModelClasses.length > 0
      ? [`model classes the dataset lacks (left out): ${r.ignoredModelClasses.join(', ')}`]
      : []),
  ].join('\n');
}

/** Options of `visioninapp train`. */
export const trainOptionsSchema = z.object({
  data: z.string().min(1),
  backend: z.enum(TRAIN_BACKENDS).default('builtin'),
  model: z.string().min(1).optional(),
  epochs: z.coerce.number().int().min(1).max(1000).default(30),
  imgsz: z.coerce.number().int().min(32).max(2048).default(320),
  batch: z.coerce.number().int().min(1).max(1024).default(16),
  lr: z.coerce.number().positive().optional(),
  seed: z.coerce.number().int().optional(),
  from: z.string().min(1).optional(),
  out: z.string().min(1).default('runs/train'),
  threads: z.coerce.number().int().min(1).max(256).default(2),
  maxCpuSeconds: z.coerce.number().positive().optional(),
  json: z.boolean().optional(),
});
export type TrainOptions = z.input<typeof trainOptionsSchema>;

const MODEL_DEFAULTS: Record<TrainBackend, string> = {
  builtin: 'builtin-n',
  ultralytics: 'yolo11n',
  yolox: 'yolox-s',
};

/** Events `runTrain` reports while it trains. */
export interface TrainEvents {
  onLog?(line: string): void;
  onMetrics?(m: BackendMetrics): void;
}

/** `visioninapp train`: runs a trainer backend on a local YOLO folder (no server), writing its outputs to `out`. */
export async function runTrain(input: TrainOptions, events: TrainEvents = {}, trainer?: Trainer) {
  const o = trainOptionsSchema.parse(input);
  const dataYaml = statSync(o.data).isFile() ? o.data : path.join(o.data, 'data.yaml');
  if (!existsSync(dataYaml))
    throw new PlatformError(
      'not_found',
      `no data.yaml at ${dataYaml}; pass --data a YOLO dataset folder (data.yaml, images/, labels/)`,
    );
  if (o.from !== undefined && !existsSync(o.from))
    throw new PlatformError(
      'not_found',
      `--from ${o.from}: no such file; pass the best.pt of an earlier training`,
    );
  const t = trainer ?? (await backendFor(o.backend, o.threads));
  const why = await t.unavailableReason();
  if (why !== undefined) throw new PlatformError('unavailable', why);
  const outDir = path.resolve(o.out);
  await mkdir(outDir, { recursive: true });
  const classNames = parseYoloDataYaml(await readFile(dataYaml, 'utf8'), dataYaml).classNames ?? [];
  const run = t.train(
    {
      dataDir: path.dirname(path.resolve(dataYaml)),
      dataYaml: path.resolve(dataYaml),
      outDir,
      classNames,
      ...(o.from !== undefined ? { initWeights: path.resolve(o.from) } : {}),
      config: {
        backend: o.backend,
        model: o.model ?? MODEL_DEFAULTS[o.backend],
        epochs: o.epochs,
        imgsz: o.imgsz,
        batch: o.batch,
        ...(o.lr !== undefined ? { lr: o.lr } : {}),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(o.maxCpuSeconds !== undefined && o.backend === 'builtin'
          ? { extra: { 'max-cpu-seconds': o.maxCpuSeconds } }
          : {}),
      },
    },
    { onLog: (l) => events.onLog?.(l), onMetrics: (m) => events.onMetrics?.(m) },
  );
  // the trainer runs in its own process group, which a Ctrl-C in the terminal does not reach
  const stop = () => run.cancel();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const result = await run.done.finally(() => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  });
  if (result.status !== 'succeeded')
    throw new PlatformError(
      'unavailable',
      `training ${result.status}: ${result.message ?? 'see the log above'}`,
    );
  await writeFile(
    path.join(outDir, 'cli-result.json'),
    JSON.stringify({ files: result.files, metrics: result.metrics }, null, 2),
  );
  return { outDir, files: result.files, metrics: result.metrics };
}

async function backendFor(name: TrainBackend, threads: number): Promise<Trainer> {
  if (name === 'builtin')
    return new (await import('../gpu-runner/backends/builtin.js')).BuiltinTrainer({ threads });
  if (name === 'ultralytics')
    return new (await import('../gpu-runner/backends/ultralytics.js')).UltralyticsTrainer();
  return new (await import('../gpu-runner/backends/yolox.js')).YoloxTrainer();
}

const EPOCH_COLUMNS: Array<[string, string]> = [
  ['box_loss', 'box_loss'],
  ['cls_loss', 'cls_loss'],
  ['precision', 'P'],
  ['recall', 'R'],
  ['mAP50', 'mAP50'],
  ['mAP50_95', 'mAP50-95'],
  ['seconds', 's'],
];

/** The header and one row of the per-epoch table `visioninapp train` prints. */
export function epochTable(): { header: string; row(m: BackendMetrics): string } {
  const cell = (s: string) => s.padStart(10);
  return {
    header: ['epoch'.padStart(9), ...EPOCH_COLUMNS.map(([, h]) => cell(h))].join(''),
    row: (m) =>
      [
        `${m.epoch}/${m.epochs}`.padStart(9),
        ...EPOCH_COLUMNS.map(([k]) =>
          cell(
            m.metrics[k] === undefined
              ? '-'
              : k === 'seconds'
                ? m.metrics[k].toFixed(1)
                : m.metrics[k].toFixed(3),
          ),
        ),
      ].join(''),
  };
}

/** Prints training live: a progress bar within each epoch (stderr), one table row per epoch (stdout). */
export function trainPrinter(json: boolean): TrainEvents & { finish(): void } {
  const table = epochTable();
  let bar: ReturnType<typeof progressLine> | undefined;
  let headerShown = false;
  return {
    onLog(line) {
      if (!json && !line.startsWith('{')) process.stderr.write(`${line}\n`);
    },
    onMetrics(m) {
      if (m.kind === 'progress' && m.batches !== undefined) {
        bar ??= progressLine('training');
        bar.update(m.batch ?? 0, m.batches, `epoch ${m.epoch}/${m.epochs}`);
        return;
      }
      bar?.done();
      bar = undefined;
      if (json) return;
      if (!headerShown) process.stdout.write(`${table.header}\n`);
      headerShown = true;
      process.stdout.write(`${table.row(m)}\n`);
    },
    finish() {
      bar?.done();
    },
  };
}
