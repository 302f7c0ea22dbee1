import { createHash } from 'node:crypto';
import { appendFileSync, existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { isPlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { MessagePayload, MessageType, TrainBackend } from '../protocol/envelope.js';
import type { BackendMetrics, BackendResult, BackendRun, Trainer } from './backends/types.js';
import type { ClaimStore } from './claims.js';
import { checkDataset, writeDataYaml } from './dataset.js';
import { downloadWithRetry, putWithRetry, type TransferOptions } from './transfer.js';

/** A `train.start` command. */
export type TrainStart = MessagePayload<'train.start'>;
type JobStatus = MessagePayload<'train.status'>['status'];

/** The job a runner is running, so a cancel or a stop reaches it. */
export interface ActiveJob {
  jobId: string;
  attempt: number;
  abort: AbortController;
  run?: BackendRun;
  cancelled: boolean;
}

/** What running one job needs from its runner. */
export interface JobEnv {
  runnerId: string;
  workDir: string;
  log: Logger;
  version?: string;
  /** The trainer for a backend, or why it cannot run here. */
  trainer(backend: TrainBackend): Trainer | { unavailable: string };
  claims: ClaimStore;
  publish<T extends MessageType>(type: T, payload: MessagePayload<T>): void;
  status(p: { jobId: string; attempt: number }, status: JobStatus, message?: string): void;
  heartbeat(): void;
  logBatchLines?: number;
  logFlushMs?: number;
  keepDatasets?: boolean;
  uploadRetryMs?: number;
  downloadRetryMs?: number;
}

/** File name of the downloaded checkpoint a fine-tuning starts from (under the job's `init/`). */
const INIT_FILE = 'init.pt';
const THIRTY_MINUTES = 30 * 60_000;

/**
 * Runs one training job to its final status: downloads the dataset (and the checkpoint to fine-tune
 * from), trains with the backend in a child process while streaming logs and metrics, uploads the
 * artifacts and announces them. Every path ends in exactly one final `train.status`.
 */
export async function runJob(p: TrainStart, active: ActiveJob, env: JobEnv): Promise<void> {
  const jobDir = path.join(env.workDir, 'jobs', `${safeName(p.jobId)}-${p.attempt}`);
  const dataDir = path.join(jobDir, 'data');
  const outDir = path.join(jobDir, 'out');
  const logFile = path.join(outDir, 'train.log');
  const logs = new LogBatcher(
    (lines, seq) => env.publish('train.log', { jobId: p.jobId, attempt: p.attempt, seq, lines }),
    env.logBatchLines ?? 100,
    env.logFlushMs ?? 1000,
    (line) => appendFileSync(logFile, `${line}\n`),
  );
  const finish = (state: 'succeeded' | 'failed' | 'cancelled', message?: string) => {
    logs.close();
    env.claims.set(p.jobId, p.attempt, state);
    env.status(p, state, message);
  };
  const transfer = (retryMs: number | undefined): TransferOptions => ({
    jobId: p.jobId,
    retryMs: retryMs ?? THIRTY_MINUTES,
    signal: active.abort.signal,
    log: env.log,
  });
  const me = `runner ${env.runnerId}`;
  try {
    await mkdir(outDir, { recursive: true });
    env.claims.set(p.jobId, p.attempt, 'running');
    env.status(p, 'running');
    env.heartbeat();
    const trainer = env.trainer(p.config.backend);
    if ('unavailable' in trainer)
      return finish(
        'failed',
        `backend ${p.config.backend} is not available on ${me}: ${trainer.unavailable}`,
      );
    const { dataset } = p;
    logs.add(
      `${me}: downloading ${dataset.files.length} files of dataset ${dataset.name} v${dataset.version}`,
    );
    await downloadWithRetry(dataset.files, dataDir, transfer(env.downloadRetryMs));
    let initWeights: string | undefined;
    if (p.init !== undefined) {
      logs.add(`${me}: downloading the checkpoint of ${p.init.ref} to fine-tune from`);
      const initDir = path.join(jobDir, 'init');
      const file = { path: INIT_FILE, url: p.init.url, sha256: p.init.sha256, size: p.init.size };
      await downloadWithRetry([file], initDir, transfer(env.downloadRetryMs));
      initWeights = path.join(initDir, INIT_FILE);
    }
    if (active.cancelled) return finish('cancelled', 'cancelled');
    const dataYaml = await writeDataYaml(dataDir, dataset.classNames);
    await checkDataset(dataDir, `${dataset.name} v${dataset.version}`);
    const { config } = p;
    logs.add(
      `${me}: training ${config.backend}/${config.model} for ${config.epochs} epochs at ${config.imgsz}px`,
    );
    const run = trainer.train(
      {
        dataDir,
        dataYaml,
        outDir,
        config,
        classNames: dataset.classNames,
        ...(initWeights !== undefined ? { initWeights } : {}),
      },
      { onLog: (line) => logs.add(line), onMetrics: (m) => publishMetrics(env, p, m) },
    );
    active.run = run;
    if (active.cancelled) run.cancel();
    const result = await run.done;
    if (result.status === 'cancelled' || active.cancelled) return finish('cancelled', 'cancelled');
    if (result.status === 'failed') {
      logs.add(`failed: ${result.message ?? 'unknown error'}`);
      return finish('failed', result.message ?? 'training failed; see train.log');
    }
    logs.flush();
    await upload(env, p, result, logFile, transfer(env.uploadRetryMs));
    finish('succeeded');
  } catch (err) {
    if (active.cancelled) return finish('cancelled', 'cancelled');
    const message = isPlatformError(err) ? err.message : `runner error: ${(err as Error).message}`;
    env.log.error({ jobId: p.jobId, err: (err as Error).message }, 'job failed');
    logs.add(`failed: ${message}`);
    finish('failed', message);
  } finally {
    if (!env.keepDatasets) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function finiteOnly(values: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(values)) if (Number.isFinite(v)) out[k] = v;
  return out;
}

function publishMetrics(env: JobEnv, p: TrainStart, m: BackendMetrics): void {
  env.publish('train.metrics', {
    jobId: p.jobId,
    attempt: p.attempt,
    epoch: Math.max(0, Math.round(m.epoch)),
    epochs: Math.max(1, Math.round(m.epochs)),
    kind: m.kind,
    ...(m.batch !== undefined ? { batch: m.batch } : {}),
    ...(m.batches !== undefined ? { batches: m.batches } : {}),
    metrics: finiteOnly(m.metrics),
  });
}

// uploads every artifact the platform presigned a URL for, then announces them in one artifact.ready
async function upload(
  env: JobEnv,
  p: TrainStart,
  result: BackendResult,
  logFile: string,
  transfer: TransferOptions,
): Promise<void> {
  const files = { ...result.files, ...(existsSync(logFile) ? { 'train.log': logFile } : {}) };
  if (p.uploads['model.onnx'] === undefined)
    throw new Error('train.start has no upload URL for model.onnx; the platform must presign one');
  const artifacts: MessagePayload<'artifact.ready'>['artifacts'] = [];
  for (const [name, file] of Object.entries(files)) {
    const target = p.uploads[name];
    if (target === undefined) continue;
    const body = await readFile(file);
    const sha256 = createHash('sha256').update(body).digest('hex');
    await putWithRetry(name, target.url, body, transfer);
    artifacts.push({ name, key: target.key, sha256, size: body.length });
  }
  env.publish('artifact.ready', {
    jobId: p.jobId,
    attempt: p.attempt,
    runnerId: env.runnerId,
    artifacts,
    model: { layout: result.layout, inputSize: result.inputSize, classNames: p.dataset.classNames },
    metrics: finiteOnly(result.metrics),
    ...(result.perClass ? { perClass: result.perClass } : {}),
    ...(env.version ? { codeVersion: env.version } : {}),
  });
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
}

/** Collects log lines into sequence-numbered batches, sent when full or after `flushMs`. */
export class LogBatcher {
  private lines: string[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly send: (lines: string[], seq: number) => void,
    private readonly maxLines: number,
    private readonly flushMs: number,
    private readonly sink?: (line: string) => void,
  ) {}

  add(line: string): void {
    if (this.closed) return;
    const clipped = line.length > 4000 ? `${line.slice(0, 4000)}…` : line;
    this.sink?.(clipped);
    this.lines.push(clipped);
    if (this.lines.length >= this.maxLines) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const batch = this.lines;
    this.lines = [];
    this.send(batch, this.seq++);
  }

  close(): void {
    this.flush();
    this.closed = true;
  }
}
