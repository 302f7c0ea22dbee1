import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CsvFollower, parseNumericCsv } from './csv-follow.js';
import { runCommand, spawnLines } from './process.js';
import type { BackendEvents, BackendJob, BackendResult, BackendRun, Trainer } from './types.js';

/** Options of the Ultralytics backend. */
export interface UltralyticsTrainerOptions {
  /** The `yolo` executable of the ultralytics package (default `YOLO_BIN` or `yolo`). */
  yolo?: string;
  /** Extra environment for the child processes. */
  env?: Record<string, string>;
}

/** Maps Ultralytics results.csv columns to the platform's metric names. */
const COLUMNS: Record<string, string> = {
  'train/box_loss': 'box_loss',
  'train/cls_loss': 'cls_loss',
  'train/dfl_loss': 'dfl_loss',
  'metrics/precision(B)': 'precision',
  'metrics/recall(B)': 'recall',
  'metrics/mAP50(B)': 'mAP50',
  'metrics/mAP50-95(B)': 'mAP50_95',
  'val/box_loss': 'val_box_loss',
  'val/cls_loss': 'val_cls_loss',
  'val/dfl_loss': 'val_dfl_loss',
  'lr/pg0': 'lr',
  time: 'seconds',
};

/** Platform metric names of one Ultralytics results.csv row. */
export function ultralyticsRowMetrics(row: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [col, name] of Object.entries(COLUMNS)) if (row[col] !== undefined) out[name] = row[col];
  return out;
}

/** The weights argument for a model name: `yolo11n` → `yolo11n.pt`; paths and .yaml configs pass through. */
export function ultralyticsWeights(model: string): string {
  return /\.(pt|ya?ml)$/.test(model) ? model : `${model}.pt`;
}

/** YOLO26 and YOLOv10 export end-to-end (NMS-free) outputs; the others the `[1, 4+nc, N]` layout. */
export function ultralyticsLayout(model: string): 'ultralytics' | 'end2end' {
  return /yolo(v?10|26)/i.test(model) ? 'end2end' : 'ultralytics';
}

/** Ultralytics YOLOv12 / YOLO11 / YOLO26 through its `yolo` CLI: train, follow results.csv, export ONNX. */
export class UltralyticsTrainer implements Trainer {
  readonly name = 'ultralytics' as const;
  private readonly yolo: string;
  private readonly env: Record<string, string>;

  constructor(opts: UltralyticsTrainerOptions = {}) {
    this.yolo = opts.yolo ?? process.env.YOLO_BIN ?? 'yolo';
    this.env = opts.env ?? {};
  }

  async unavailableReason(): Promise<string | undefined> {
    const r = await runCommand(this.yolo, ['version']);
    if (r.code === 0) return undefined;
    return `the ultralytics backend needs the \`yolo\` CLI (${r.error?.message ?? r.stderr.split('\n').pop() ?? 'not found'}); install it with \`pip install ultralytics\` or set YOLO_BIN`;
  }

  train(job: BackendJob, events: BackendEvents): BackendRun {
    let cancelled = false;
    let current: ReturnType<typeof spawnLines> | undefined;
    const c = job.config;
    const runDir = path.join(job.outDir, 'train');
    const base: Omit<BackendResult, 'status'> = {
      files: {},
      metrics: {},
      layout: ultralyticsLayout(c.model),
      inputSize: c.imgsz,
    };
    const env = { ...process.env, ...this.env };
    const run = async (args: string[]) => {
      current = spawnLines(this.yolo, args, {
        env,
        cwd: job.outDir,
        onStdout: events.onLog,
        onStderr: events.onLog,
      });
      return current.exited;
    };
    const done = (async (): Promise<BackendResult> => {
      await mkdir(job.outDir, { recursive: true });
      const args = [
        'detect',
        'train',
        `data=${job.dataYaml}`,
        // fine-tuning: Ultralytics keeps every tensor whose shape matches, so a changed class list starts its class head fresh
        `model=${job.initWeights ?? ultralyticsWeights(c.model)}`,
        `epochs=${c.epochs}`,
        `imgsz=${c.imgsz}`,
        `batch=${c.batch}`,
        `project=${job.outDir}`,
        'name=train',
        'exist_ok=True',
      ];
      if (c.seed !== undefined) args.push(`seed=${c.seed}`);
      if (c.lr !== undefined) args.push(`lr0=${c.lr}`);
      for (const [k, v] of Object.entries(c.extra ?? {})) args.push(`${k}=${String(v)}`);
      let last: Record<string, number> = {};
      const follower = new CsvFollower(path.join(runDir, 'results.csv'), (row) => {
        const metrics = ultralyticsRowMetrics(row);
        last = metrics;
        events.onMetrics({
          kind: 'epoch',
          epoch: Math.max(0, Math.round(row.epoch ?? 0)),
          epochs: c.epochs,
          metrics,
        });
      });
      follower.start();
      const exit = await run(args);
      await follower.stop();
      if (cancelled || exit.stopped) return { ...base, status: 'cancelled' };
      if (exit.code !== 0)
        return {
          ...base,
          status: 'failed',
          message: `yolo detect train failed (exit ${exit.code ?? exit.signal}): ${exit.spawnError?.message ?? exit.stderrTail.slice(-3).join(' | ')}`,
        };
      const best = path.join(runDir, 'weights', 'best.pt');
      if (!existsSync(best))
        return { ...base, status: 'failed', message: `yolo finished but ${best} is missing; see train.log` };
      const exp = await run(['export', `model=${best}`, 'format=onnx', `imgsz=${c.imgsz}`]);
      if (cancelled || exp.stopped) return { ...base, status: 'cancelled' };
      const onnx = path.join(runDir, 'weights', 'best.onnx');
      if (exp.code !== 0 || !existsSync(onnx))
        return {
          ...base,
          status: 'failed',
          message: `yolo export format=onnx failed (exit ${exp.code}): ${exp.stderrTail.slice(-3).join(' | ')}`,
        };
      const files: Record<string, string> = {};
      files['model.onnx'] = path.join(job.outDir, 'model.onnx');
      await copyFile(onnx, files['model.onnx']);
      files['best.pt'] = path.join(job.outDir, 'best.pt');
      await copyFile(best, files['best.pt']);
      const csv = path.join(runDir, 'results.csv');
      if (existsSync(csv)) {
        files['results.csv'] = path.join(job.outDir, 'results.csv');
        await copyFile(csv, files['results.csv']);
        const rows = parseNumericCsv((await readFile(csv, 'utf8')) + '\n').rows;
        const lastRow = rows[rows.length - 1];
        if (lastRow) last = ultralyticsRowMetrics(lastRow);
      }
      files['metrics.json'] = path.join(job.outDir, 'metrics.json');
      await writeFile(
        files['metrics.json'],
        JSON.stringify(
          { ...last, backend: 'ultralytics', model: c.model, imgsz: c.imgsz, classes: job.classNames },
          null,
          2,
        ),
      );
      files['report.md'] = path.join(job.outDir, 'report.md');
      await writeFile(files['report.md'], report('Ultralytics', c.model, job.classNames, c.epochs, last));
      return { ...base, status: 'succeeded', files, metrics: last };
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

/** A short markdown training report for the external backends. */
export function report(
  backend: string,
  model: string,
  classNames: string[],
  epochs: number,
  metrics: Record<string, number>,
): string {
  const fmt = (k: string) => (metrics[k] === undefined ? 'n/a' : metrics[k].toFixed(3));
  return [
    `# ${backend} training report`,
    '',
    `- model: ${model}, ${epochs} epochs`,
    `- classes: ${classNames.join(', ')}`,
    `- final: mAP50 ${fmt('mAP50')}, mAP50-95 ${fmt('mAP50_95')}, precision ${fmt('precision')}, recall ${fmt('recall')}`,
    '',
  ].join('\n');
}
