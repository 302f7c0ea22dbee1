import type { Logger } from '../core/log.js';
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
import type { Trainer } from './backends/types.js';
import { UltralyticsTrainer } from './backends/ultralytics.js';
import { YoloxTrainer } from './backends/yolox.js';
import { ClaimStore } from './claims.js';
import { detectDevice, type RunnerDevice } from './device.js';
import { runJob, type ActiveJob, type TrainStart } from './job.js';
import { OrderedPublisher } from './publisher.js';

export { LogBatcher } from './job.js';

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
    const o = this.opts;
    try {
      await runJob(p, active, {
        runnerId: o.id,
        workDir: o.workDir,
        log: this.log,
        ...(o.version ? { version: o.version } : {}),
        trainer: (backend) => this.trainer(backend),
        claims: this.claims,
        publish: (type, payload) => this.publish(type, payload),
        status: (job, status, message) => this.status(job, status, message),
        heartbeat: () => this.sendHeartbeat(),
        ...pick(o, ['logBatchLines', 'logFlushMs', 'keepDatasets', 'uploadRetryMs', 'downloadRetryMs']),
      });
    } finally {
      this.active = undefined;
      this.sendHeartbeat();
    }
  }

  private trainer(backend: TrainBackend): Trainer | { unavailable: string } {
    const trainer = this.trainers.get(backend);
    if (trainer !== undefined && this.available.includes(backend)) return trainer;
    const why = this.unavailable[backend] ?? `runner ${this.opts.id} is not configured with it`;
    return { unavailable: `${why}; available: ${this.available.join(', ') || 'none'}` };
  }
}

/** Final job states; their envelopes are kept for status requests. */
const FINAL_STATUSES = new Set(['succeeded', 'failed', 'cancelled']);
/** Recent jobs whose final envelopes a runner keeps. */
const KEEP_FINISHED = 50;

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

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
