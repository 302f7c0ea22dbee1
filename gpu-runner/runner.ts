import { createHash } from 'node:crypto';
import { appendFileSync, existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../core/log.js';
import { isPlatformError, PlatformError } from '../core/errors.js';
import {
  makeEnvelope,
  parseMessage,
  type Envelope,
  type MessagePayload,
  type MessageType,
  type TrainBackend,
} from '../protocol/envelope.js';
import { STREAMS, type Broker, type Subscription } from '../services/infra/broker/port.js';
import { BuiltinTrainer } from './backends/builtin.js';
import type { BackendMetrics, BackendResult, BackendRun, Trainer } from './backends/types.js';
import { UltralyticsTrainer } from './backends/ultralytics.js';
import { YoloxTrainer } from './backends/yolox.js';
import { ClaimStore } from './claims.js';
import { checkDataset, downloadDataset, writeDataYaml } from './dataset.js';
import { detectDevice, type RunnerDevice } from './device.js';
import { OrderedPublisher } from './publisher.js';

type TrainStart = MessagePayload<'train.start'>;

/** Options of a GPU runner. */
export interface GpuRunnerOptions {
  /** Stable runner id; jobs are addressed to it and its consumer name derives from it. */
  id: string;
  broker: Broker;
  log: Logger;
  /** Folder for claims.json and per-job dataset/output folders. */
  workDir: string;
  /** Backends by name (default instances) or ready-made trainers. */
  backends: (TrainBackend | Trainer)[];
  /** Python for the builtin backend (default `TRAIN_PYTHON` or /usr/bin/python3). */
  python?: string;
  heartbeatMs?: number;
  /** Log lines per train.log message, and the longest a line waits before it is sent. */
  logBatchLines?: number;
  logFlushMs?: number;
  /** Keep each job's downloaded dataset after it ends (default false: removed, outputs kept). */
  keepDatasets?: boolean;
  version?: string;
  /** Device override (tests); default from nvidia-smi or the CPU. */
  device?: RunnerDevice;
  /**
   * How long an artifact upload keeps retrying while storage (or the platform serving its signed
   * URLs) is unreachable or answers 5xx (default 30 min), so a platform restart never loses a finished training.
   */
  uploadRetryMs?: number;
  /**
   * How long the dataset download keeps retrying while the platform serving its signed URLs is
   * unreachable or answers 5xx (default 30 min), so a platform restart never fails a job that was just sent.
   */
  downloadRetryMs?: number;
}

const CONTENT_TYPES: Record<string, string> = {
  '.onnx': 'application/octet-stream',
  '.json': 'application/json',
  '.csv': 'text/csv',
  '.md': 'text/markdown',
  '.log': 'text/plain',
};

interface ActiveJob {
  jobId: string;
  attempt: number;
  abort: AbortController;
  run?: BackendRun;
  cancelled: boolean;
}

/**
 * The training worker: advertises itself on `vision.telemetry`, takes `train.start` messages addressed
 * to it from `vision.control`, trains in a child process with the chosen backend, streams logs,
 * metrics and status, uploads artifacts through presigned URLs and announces them.
 */
export class GpuRunner {
  private readonly opts: GpuRunnerOptions;
  private readonly log: Logger;
  private readonly trainers = new Map<TrainBackend, Trainer>();
  private readonly publisher: OrderedPublisher;
  private readonly claims: ClaimStore;
  private readonly queued = new Map<string, TrainStart>();
  /** The final status and artifact.ready envelopes of recent jobs, re-sent as they were on a status.request. */
  private readonly finished = new Map<string, Envelope[]>();
  private available: TrainBackend[] = [];
  private unavailable: Partial<Record<TrainBackend, string>> = {};
  private device: RunnerDevice | undefined;
  private subscription: Subscription | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private active: ActiveJob | undefined;
  private chain: Promise<void> = Promise.resolve();
  private started = false;

  constructor(opts: GpuRunnerOptions) {
    this.opts = opts;
    this.log = opts.log.child({ runner: opts.id });
    for (const b of opts.backends) {
      const t = typeof b === 'string' ? defaultTrainer(b, opts.python) : b;
      this.trainers.set(t.name, t);
    }
    this.publisher = new OrderedPublisher({ broker: opts.broker, log: this.log });
    this.claims = new ClaimStore(opts.workDir);
  }

  /** Backends that can run here (known after `start()`). */
  get backends(): TrainBackend[] {
    return [...this.available];
  }

  /** Why each unavailable backend cannot run, with how to fix it. */
  get unavailableReasons(): Partial<Record<TrainBackend, string>> {
    return { ...this.unavailable };
  }

  /** Probes backends and the device, subscribes to `vision.control` and starts heartbeating. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const [name, t] of this.trainers) {
      const reason = await t.unavailableReason();
      if (reason === undefined) this.available.push(name);
      else {
        this.unavailable[name] = reason;
        this.log.warn({ backend: name, reason }, 'backend unavailable');
      }
    }
    this.device = this.opts.device ?? (await detectDevice());
    this.subscription = await this.opts.broker.subscribe(
      STREAMS.control,
      { name: `gpu-runner-${this.opts.id}`, from: 'next' },
      (env) => this.onControl(env),
    );
    this.sendHeartbeat();
    this.heartbeat = setInterval(() => this.sendHeartbeat(), this.opts.heartbeatMs ?? 5000);
    this.heartbeat.unref();
    this.log.info({ backends: this.available, device: this.device }, 'gpu runner started');
  }

  /** Stops taking jobs; a running job is stopped and reported failed so the platform can retry it. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.subscription?.close();
    this.subscription = undefined;
    for (const [key, p] of this.queued) {
      this.queued.delete(key);
      this.status(p, 'failed', `runner ${this.opts.id} stopped before starting the job; start it again`);
    }
    const a = this.active;
    if (a) {
      a.abort.abort();
      a.run?.cancel();
    }
    await Promise.race([this.chain, new Promise((r) => setTimeout(r, 8000))]);
    await this.publisher.flush(5000);
    this.publisher.close();
  }

  private publish<T extends MessageType>(type: T, payload: MessagePayload<T>): void {
    const envelope = makeEnvelope(type, payload, { source: `gpu-runner/${this.opts.id}` });
    this.publisher.publish(STREAMS.telemetry, envelope);
    const p = payload as { jobId?: string; attempt?: number; status?: string };
    if (type === 'artifact.ready' || (type === 'train.status' && FINAL_STATUSES.has(p.status ?? ''))) {
      const key = ClaimStore.key(p.jobId!, p.attempt!);
      this.finished.set(key, [...(this.finished.get(key) ?? []), envelope]);
      for (const old of this.finished.keys()) {
        if (this.finished.size <= KEEP_FINISHED) break;
        this.finished.delete(old);
      }
    }
  }

  /** Reports again what this runner knows of the named jobs: the same final envelopes, or that it still runs them. */
  private answerStatusRequest(jobs: Array<{ jobId: string; attempt: number; runnerId: string }>): void {
    for (const job of jobs) {
      if (job.runnerId !== this.opts.id) continue;
      const key = ClaimStore.key(job.jobId, job.attempt);
      const sent = this.finished.get(key);
      if (sent !== undefined)
        for (const envelope of sent) this.publisher.publish(STREAMS.telemetry, envelope);
      else if (this.active?.jobId === job.jobId && this.active.attempt === job.attempt)
        this.status(job, 'running');
      else if (this.queued.has(key)) this.status(job, 'claimed');
    }
    this.sendHeartbeat();
  }

  private sendHeartbeat(): void {
    if (!this.device) return;
    const busy = this.active?.jobId;
    this.publish('runner.heartbeat', {
      runnerId: this.opts.id,
      backends: this.available,
      device: this.device,
      ...(busy ? { busyJobId: busy } : {}),
      ...(this.opts.version ? { version: this.opts.version } : {}),
    });
  }

  private status(
    p: { jobId: string; attempt: number },
    status: MessagePayload<'train.status'>['status'],
    message?: string,
  ): void {
    this.publish('train.status', {
      jobId: p.jobId,
      attempt: p.attempt,
      runnerId: this.opts.id,
      status,
      ...(message ? { message } : {}),
    });
  }

  private onControl(env: Envelope): void {
    const parsed = parseMessage(env);
    if (!parsed.ok) return;
    const m = parsed.message;
    if (m.type === 'train.start') {
      const p = m.payload;
      if (p.runnerId !== this.opts.id) return;
      if (this.claims.has(p.jobId, p.attempt)) {
        this.log.info(
          { jobId: p.jobId, attempt: p.attempt, state: this.claims.state(p.jobId, p.attempt) },
          'job already taken; ignoring the repeated train.start',
        );
        return;
      }
      this.claims.set(p.jobId, p.attempt, 'claimed');
      this.status(p, 'claimed');
      const key = ClaimStore.key(p.jobId, p.attempt);
      this.queued.set(key, p);
      this.chain = this.chain.then(async () => {
        if (!this.queued.delete(key)) return;
        await this.runJob(p);
      });
    } else if (m.type === 'status.request') {
      this.answerStatusRequest(m.payload.jobs);
    } else if (m.type === 'train.cancel') {
      const { jobId, attempt } = m.payload;
      const key = ClaimStore.key(jobId, attempt);
      const reason = m.payload.reason ? `cancelled: ${m.payload.reason}` : 'cancelled';
      if (this.active && this.active.jobId === jobId && this.active.attempt === attempt) {
        this.active.cancelled = true;
        this.active.abort.abort();
        this.active.run?.cancel();
      } else if (this.queued.delete(key)) {
        this.claims.set(jobId, attempt, 'cancelled');
        this.status({ jobId, attempt }, 'cancelled', reason);
      } else if (!this.claims.has(jobId, attempt)) {
        // a cancel for a job not seen yet keeps a late train.start from running it
        this.claims.set(jobId, attempt, 'cancelled');
      }
    }
  }

  private async runJob(p: TrainStart): Promise<void> {
    const active: ActiveJob = {
      jobId: p.jobId,
      attempt: p.attempt,
      abort: new AbortController(),
      cancelled: false,
    };
    this.active = active;
    const jobDir = path.join(this.opts.workDir, 'jobs', `${safeName(p.jobId)}-${p.attempt}`);
    const dataDir = path.join(jobDir, 'data');
    const outDir = path.join(jobDir, 'out');
    const logFile = path.join(outDir, 'train.log');
    const logs = new LogBatcher(
      (lines, seq) => this.publish('train.log', { jobId: p.jobId, attempt: p.attempt, seq, lines }),
      this.opts.logBatchLines ?? 100,
      this.opts.logFlushMs ?? 1000,
      (line) => appendFileSync(logFile, `${line}\n`),
    );
    const finish = (state: 'succeeded' | 'failed' | 'cancelled', message?: string) => {
      logs.close();
      this.claims.set(p.jobId, p.attempt, state);
      this.status(p, state, message);
    };
    try {
      await mkdir(outDir, { recursive: true });
      this.claims.set(p.jobId, p.attempt, 'running');
      this.status(p, 'running');
      this.sendHeartbeat();
      const trainer = this.trainers.get(p.config.backend);
      if (trainer === undefined || !this.available.includes(p.config.backend)) {
        const why = this.unavailable[p.config.backend] ?? `runner ${this.opts.id} is not configured with it`;
        return finish(
          'failed',
          `backend ${p.config.backend} is not available on runner ${this.opts.id}: ${why}; available: ${this.available.join(', ') || 'none'}`,
        );
      }
      logs.add(
        `runner ${this.opts.id}: downloading ${p.dataset.files.length} files of dataset ${p.dataset.name} v${p.dataset.version}`,
      );
      await this.download(p, p.dataset.files, dataDir, active.abort.signal);
      let initWeights: string | undefined;
      if (p.init !== undefined) {
        logs.add(`runner ${this.opts.id}: downloading the checkpoint of ${p.init.ref} to fine-tune from`);
        const initDir = path.join(jobDir, 'init');
        await this.download(
          p,
          [{ path: INIT_FILE, url: p.init.url, sha256: p.init.sha256, size: p.init.size }],
          initDir,
          active.abort.signal,
        );
        initWeights = path.join(initDir, INIT_FILE);
      }
      if (active.cancelled) return finish('cancelled', 'cancelled');
      const dataYaml = await writeDataYaml(dataDir, p.dataset.classNames);
      await checkDataset(dataDir, `${p.dataset.name} v${p.dataset.version}`);
      logs.add(
        `runner ${this.opts.id}: training ${p.config.backend}/${p.config.model} for ${p.config.epochs} epochs at ${p.config.imgsz}px`,
      );
      const run = trainer.train(
        {
          dataDir,
          dataYaml,
          outDir,
          config: p.config,
          classNames: p.dataset.classNames,
          ...(initWeights !== undefined ? { initWeights } : {}),
        },
        { onLog: (line) => logs.add(line), onMetrics: (m) => this.metrics(p, m) },
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
      await this.upload(p, result, logFile, active.abort.signal);
      finish('succeeded');
    } catch (err) {
      if (active.cancelled) return finish('cancelled', 'cancelled');
      const message = isPlatformError(err) ? err.message : `runner error: ${(err as Error).message}`;
      this.log.error({ jobId: p.jobId, err: (err as Error).message }, 'job failed');
      logs.add(`failed: ${message}`);
      finish('failed', message);
    } finally {
      this.active = undefined;
      this.sendHeartbeat();
      if (!this.opts.keepDatasets) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private metrics(p: TrainStart, m: BackendMetrics): void {
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(m.metrics)) if (Number.isFinite(v)) metrics[k] = v;
    this.publish('train.metrics', {
      jobId: p.jobId,
      attempt: p.attempt,
      epoch: Math.max(0, Math.round(m.epoch)),
      epochs: Math.max(1, Math.round(m.epochs)),
      kind: m.kind,
      ...(m.batch !== undefined ? { batch: m.batch } : {}),
      ...(m.batches !== undefined ? { batches: m.batches } : {}),
      metrics,
    });
  }

  private async upload(
    p: TrainStart,
    result: BackendResult,
    logFile: string,
    signal: AbortSignal,
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
      await this.put(p, name, target.url, body, signal);
      artifacts.push({ name, key: target.key, sha256, size: body.length });
    }
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(result.metrics)) if (Number.isFinite(v)) metrics[k] = v;
    this.publish('artifact.ready', {
      jobId: p.jobId,
      attempt: p.attempt,
      runnerId: this.opts.id,
      artifacts,
      model: { layout: result.layout, inputSize: result.inputSize, classNames: p.dataset.classNames },
      metrics,
      ...(result.perClass ? { perClass: result.perClass } : {}),
      ...(this.opts.version ? { codeVersion: this.opts.version } : {}),
    });
  }

  /** Downloads the job's dataset, retrying with backoff (1 s doubling to 15 s) while storage is unreachable, up to `downloadRetryMs`. */
  private async download(
    p: TrainStart,
    files: TrainStart['dataset']['files'],
    dataDir: string,
    signal: AbortSignal,
  ): Promise<void> {
    const budget = this.opts.downloadRetryMs ?? 30 * 60_000;
    const deadline = Date.now() + budget;
    for (let attempt = 1; ; attempt++) {
      try {
        await downloadDataset(files, dataDir, { signal });
        if (attempt > 1) this.log.info({ jobId: p.jobId, attempt }, 'dataset downloaded after retrying');
        return;
      } catch (err) {
        if (signal.aborted || !isPlatformError(err) || err.details?.retryable !== true) throw err;
        const delay = Math.min(15_000, 1000 * 2 ** Math.min(attempt - 1, 4));
        if (Date.now() + delay > deadline)
          throw new PlatformError(
            'unavailable',
            `${err.message} (still failing after retrying for ${Math.round(budget / 1000)} s)`,
          );
        this.log.warn(
          { jobId: p.jobId, attempt, retryInMs: delay, problem: err.message },
          'dataset download failed; retrying',
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
        if (signal.aborted) throw err;
      }
    }
  }

  /**
   * PUTs one artifact, retrying with backoff (1 s doubling to 15 s) while the target is unreachable or
   * answers 5xx/408/429, up to `uploadRetryMs`; any other answer (e.g. 403, an expired URL) fails at once.
   */
  private async put(
    p: TrainStart,
    name: string,
    url: string,
    body: Buffer<ArrayBuffer>,
    signal: AbortSignal,
  ): Promise<void> {
    const deadline = Date.now() + (this.opts.uploadRetryMs ?? 30 * 60_000);
    for (let attempt = 1; ; attempt++) {
      let problem: string;
      try {
        const res = await fetch(url, {
          method: 'PUT',
          body,
          headers: {
            'content-type': CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream',
            'content-length': String(body.length),
          },
          signal: AbortSignal.any([signal, AbortSignal.timeout(300_000)]),
        });
        if (res.ok) {
          if (attempt > 1)
            this.log.info({ jobId: p.jobId, artifact: name, attempt }, 'artifact uploaded after retrying');
          return;
        }
        problem = `HTTP ${res.status} ${(await res.text().catch(() => '')).slice(0, 200)}`.trim();
        if (res.status < 500 && res.status !== 408 && res.status !== 429)
          throw new PermanentUploadError(
            `uploading ${name} failed with ${problem}; the presigned URL may have expired`,
          );
      } catch (err) {
        if (signal.aborted || err instanceof PermanentUploadError) throw err;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        problem = cause?.code ?? cause?.message ?? (err as Error).message;
      }
      const delay = Math.min(15_000, 1000 * 2 ** Math.min(attempt - 1, 4));
      if (Date.now() + delay > deadline)
        throw new Error(
          `uploading ${name} to ${urlWithoutQuery(url)} failed: storage unreachable for ${Math.round((this.opts.uploadRetryMs ?? 30 * 60_000) / 1000)} s (${problem}); check that this runner reaches that address (the platform signs with PUBLIC_URL, or the URL a serve advertised) and start the training again`,
        );
      this.log.warn(
        { jobId: p.jobId, artifact: name, attempt, retryInMs: delay, problem },
        'artifact upload failed; retrying',
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (signal.aborted) throw new Error('cancelled while uploading');
    }
  }
}

/** A signed URL without its signature, for messages. */
function urlWithoutQuery(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** File name of the downloaded checkpoint a fine-tuning starts from (under the job's `init/`). */
const INIT_FILE = 'init.pt';

/** Final job states; their envelopes are kept for status requests. */
const FINAL_STATUSES = new Set(['succeeded', 'failed', 'cancelled']);
/** Recent jobs whose final envelopes a runner keeps. */
const KEEP_FINISHED = 50;

/** An upload answer that retrying cannot change (e.g. 403 for an expired URL). */
class PermanentUploadError extends Error {}

function defaultTrainer(name: TrainBackend, python?: string): Trainer {
  switch (name) {
    case 'builtin':
      return new BuiltinTrainer(python ? { python } : {});
    case 'ultralytics':
      return new UltralyticsTrainer();
    case 'yolox':
      return new YoloxTrainer();
  }
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
