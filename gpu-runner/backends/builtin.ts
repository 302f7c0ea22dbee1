import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { runCommand, spawnLines } from './process.js';
import type { BackendEvents, BackendJob, BackendResult, BackendRun, Trainer } from './types.js';

/** The Python training script of the built-in detector. */
export const BUILTIN_TRAIN_SCRIPT = fileURLToPath(new URL('../builtin/train.py', import.meta.url));

/** How to install what the built-in backend needs. */
export const TORCH_INSTALL_HINT =
  'install PyTorch and ONNX for it: `apt-get install python3-torch python3-onnx python3-pil` or `pip install torch onnx pillow`';

const lineSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('metrics'),
    kind: z.enum(['progress', 'epoch']),
    epoch: z.number().int().min(0),
    epochs: z.number().int().min(1),
    batch: z.number().int().nonnegative().optional(),
    batches: z.number().int().positive().optional(),
    metrics: z.record(z.string(), z.number()),
  }),
  z.object({ type: z.literal('log'), line: z.string() }),
  z.object({ type: z.literal('error'), message: z.string() }),
  z.object({ type: z.literal('result'), metrics: z.record(z.string(), z.number()) }),
]);

const metricsFileSchema = z
  .object({ per_class: z.record(z.string(), z.record(z.string(), z.number())).optional() })
  .passthrough();

/** Options of the built-in backend. */
export interface BuiltinTrainerOptions {
  /** Python with torch and onnx (default `TRAIN_PYTHON` or `/usr/bin/python3`). */
  python?: string;
  /** Torch CPU threads (default 2). */
  threads?: number;
  /** Device passed to the script; `auto` picks cuda when torch sees one. */
  device?: 'cpu' | 'cuda' | 'auto';
}

/** The built-in PyTorch detector (gpu-runner/builtin/train.py) run as a child process. */
export class BuiltinTrainer implements Trainer {
  readonly name = 'builtin' as const;
  private readonly python: string;
  private readonly threads: number;
  private readonly device: 'cpu' | 'cuda' | 'auto';
  private cudaProbe: Promise<boolean> | undefined;

  constructor(opts: BuiltinTrainerOptions = {}) {
    this.python = opts.python ?? process.env.TRAIN_PYTHON ?? '/usr/bin/python3';
    this.threads = opts.threads ?? 2;
    this.device = opts.device ?? 'auto';
  }

  async unavailableReason(): Promise<string | undefined> {
    const r = await runCommand(this.python, ['-c', 'import torch, onnx, PIL']);
    if (r.code === 0) return undefined;
    const why = r.error
      ? `cannot run ${this.python} (${r.error.message})`
      : `${this.python} cannot import torch, onnx and PIL (${r.stderr.split('\n').filter(Boolean).pop() ?? 'import failed'})`;
    return `the builtin backend needs PyTorch: ${why}; ${TORCH_INSTALL_HINT}, or point TRAIN_PYTHON at a Python that has them`;
  }

  train(job: BackendJob, events: BackendEvents): BackendRun {
    let cancelled = false;
    let current: ReturnType<typeof spawnLines> | undefined;
    const done = (async (): Promise<BackendResult> => {
      const base: Omit<BackendResult, 'status'> = {
        files: {},
        metrics: {},
        layout: 'ultralytics',
        inputSize: job.config.imgsz,
      };
      const reason = await this.unavailableReason();
      if (reason !== undefined) return { ...base, status: 'failed', message: reason };
      const device = this.device === 'auto' ? ((await this.hasCuda()) ? 'cuda' : 'cpu') : this.device;
      if (cancelled) return { ...base, status: 'cancelled' };
      const c = job.config;
      const threads = typeof c.extra?.workers === 'number' ? c.extra.workers : this.threads;
      const args = [
        BUILTIN_TRAIN_SCRIPT,
        '--data',
        job.dataYaml,
        '--out',
        job.outDir,
        '--epochs',
        String(c.epochs),
        '--imgsz',
        String(c.imgsz),
        '--batch',
        String(c.batch),
        '--device',
        device,
        '--workers',
        String(threads),
      ];
      if (c.seed !== undefined) args.push('--seed', String(c.seed));
      if (c.lr !== undefined) args.push('--lr', String(c.lr));
      const width = c.extra?.width ?? widthForModel(c.model);
      args.push('--width', String(width));
      if (job.initWeights !== undefined) args.push('--from', job.initWeights);
      for (const key of BUILTIN_OPTIONS) {
        const v = c.extra?.[key];
        if (v !== undefined) args.push(`--${key}`, String(v));
      }
      let error: string | undefined;
      let final: Record<string, number> = {};
      current = spawnLines(this.python, args, {
        env: { ...process.env, PYTHONUNBUFFERED: '1', OMP_NUM_THREADS: String(threads) },
        onStdout: (raw) => {
          let parsed: z.infer<typeof lineSchema> | undefined;
          try {
            const r = lineSchema.safeParse(JSON.parse(raw));
            if (r.success) parsed = r.data;
          } catch {
            parsed = undefined;
          }
          if (parsed === undefined) return events.onLog(raw);
          if (parsed.type === 'log') events.onLog(parsed.line);
          else if (parsed.type === 'error') {
            error = parsed.message;
            events.onLog(`error: ${parsed.message}`);
          } else if (parsed.type === 'result') final = parsed.metrics;
          else {
            const { type: _type, ...update } = parsed;
            events.onMetrics(update);
          }
        },
        onStderr: (line) => events.onLog(line),
      });
      const exit = await current.exited;
      if (cancelled || exit.stopped) return { ...base, status: 'cancelled' };
      if (exit.spawnError)
        return {
          ...base,
          status: 'failed',
          message: `cannot start ${this.python}: ${exit.spawnError.message}; ${TORCH_INSTALL_HINT}`,
        };
      if (exit.code !== 0) {
        const tail = exit.stderrTail
          .filter((l) => l.trim() !== '')
          .slice(-3)
          .join(' | ');
        return {
          ...base,
          status: 'failed',
          message:
            error ?? `built-in training exited with code ${exit.code ?? exit.signal}: ${tail || 'no output'}`,
        };
      }
      const files: Record<string, string> = {};
      for (const name of ['model.onnx', 'best.pt', 'metrics.json', 'results.csv', 'report.md']) {
        const p = path.join(job.outDir, name);
        if (existsSync(p)) files[name] = p;
      }
      if (files['model.onnx'] === undefined)
        return {
          ...base,
          status: 'failed',
          message: 'training finished but wrote no model.onnx; see train.log',
        };
      let perClass: Record<string, Record<string, number>> | undefined;
      if (files['metrics.json'] !== undefined) {
        const m = metricsFileSchema.safeParse(JSON.parse(await readFile(files['metrics.json'], 'utf8')));
        if (m.success) perClass = m.data.per_class;
      }
      return { ...base, status: 'succeeded', files, metrics: final, ...(perClass ? { perClass } : {}) };
    })();
    return {
      done,
      cancel() {
        cancelled = true;
        current?.stop(3000);
      },
    };
  }

  private hasCuda(): Promise<boolean> {
    this.cudaProbe ??= runCommand(this.python, [
      '-c',
      'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)',
    ]).then((r) => r.code === 0);
    return this.cudaProbe;
  }
}

/** `config.extra` keys passed to train.py as `--key value`. */
export const BUILTIN_OPTIONS = [
  'target-map50',
  'max-seconds',
  'max-cpu-seconds',
  'check-out',
  'mosaic',
  'close-mosaic',
  'patience',
] as const;

/** Channel width of the built-in model by name: `builtin-n` (0.5, the default) or `builtin-s` (1.0). */
export function widthForModel(model: string): number {
  if (/-s$|small/i.test(model)) return 1.0;
  if (/-t$|tiny/i.test(model)) return 0.25;
  return 0.5;
}
