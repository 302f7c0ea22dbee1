import type { Selectable, Transaction } from 'kysely';
import { z } from 'zod';
import { roleAtLeast, systemPrincipal, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventBus } from '../../core/events.js';
import { priorEffect, recordEffect } from '../effects.js';
import { newId } from '../../core/ids.js';
import {
  makeEnvelope,
  parseMessage,
  trainConfigSchema,
  type MessagePayload,
  type TrainConfig,
} from '../../protocol/envelope.js';
import { STREAMS, type Broker, type Subscription } from '../infra/broker/port.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { SearchDoc } from '../infra/search/port.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import type { Storage } from '../infra/storage/port.js';
import type { Logger } from '../../core/log.js';
import { isModelName, modelNameFrom, type ModelRegistry } from '../models/model.registry.js';
import { retryTransient } from '../infra/db/retry.js';
import type { TrainingEvent } from './events.js';
import {
  CHECKPOINT_ARTIFACT,
  isFinalJob,
  JOB_ARTIFACTS,
  type JobStatus,
  type TrainingDatasets,
  type TrainingJob,
  type EpochMetrics,
  type RunnerInfo,
  type StartTrainingInput,
} from './model.js';

/** The idempotent-effect kind of a created training job. */
const JOB_EFFECT = 'training.job';
const ACTIVE: JobStatus[] = ['assigned', 'running'];
/** How long an assigned job may wait for its runner to take it before train.start is sent again. */
const START_GRACE_MS = 10_000;

/** Dependencies and settings of the training service. */
export interface TrainingServiceOptions {
  db: Db;
  broker: Broker;
  storage: Storage;
  events: EventBus<TrainingEvent>;
  log: Logger;
  datasets: TrainingDatasets;
  models: ModelRegistry;
  /** A runner silent this long is dead; its job fails or is re-queued. */
  heartbeatTimeoutMs: number;
  /** Attempts per job (1 = never re-queued). */
  maxAttempts: number;
  /** Lifetime of the signed dataset and upload URLs (default 48 h, longer than most trainings). */
  urlTtlSeconds?: number;
  /** Log lines kept in the database per job (default 200). */
  logTailLines?: number;
  /** `source` of the envelopes the platform publishes. */
  source?: string;
  now?: () => number;
}

type JobRow = Selectable<Database['training_jobs']>;

const startSchema = z.object({
  dataset: z.string().trim().min(1, 'name a dataset, e.g. "helmets-v2" or "helmets-v2@3"').max(200),
  config: trainConfigSchema,
  name: z.string().trim().min(1).max(100).optional(),
  threadId: z.string().min(1).max(191).optional(),
  from: z.string().trim().min(1).max(200).optional(),
});

class NotAssigned extends Error {}

/**
 * The platform side of training: job records, assignment of each job to exactly one live runner
 * that advertised its backend, `train.start`/`train.cancel` on `vision.control`, the telemetry
 * consumer (status, logs, metrics, artifacts of the current attempt only), heartbeat timeouts with
 * re-queueing, and registration of the resulting model version.
 */
export class TrainingService {
  private readonly o: Required<Omit<TrainingServiceOptions, 'now'>> & { now: () => number };
  private dispatching: Promise<void> = Promise.resolve();

  constructor(opts: TrainingServiceOptions) {
    this.o = {
      urlTtlSeconds: 48 * 3600,
      logTailLines: 200,
      source: 'platform',
      now: Date.now,
      ...opts,
    } as TrainingService['o'];
  }

  /** Creates a job for a dataset version and a config, and hands it to a live runner when one can take it. */
  async start(ctx: CallContext, input: StartTrainingInput): Promise<TrainingJob> {
    if (!roleAtLeast(ctx.user.role, 'operator'))
      throw new PlatformError(
        'forbidden',
        `starting training needs the operator role or above; you are ${ctx.user.role}`,
      );
    const parsed = startSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `training request is invalid: ${describeZodError(parsed.error)}`,
      );
    // a retried step (same idempotency key) gets the job it created the first time
    const earlier = await priorEffect<{ jobId: string }>(this.o.db.kysely, ctx, JOB_EFFECT);
    if (earlier !== undefined) return this.get(ctx, earlier.jobId);
    const manifest = await this.o.datasets.trainingManifest(
      ctx,
      parsed.data.dataset,
      async () => 'about:blank',
    );
    if (manifest.files.length === 0) {
      throw new PlatformError(
        'invalid_input',
        `dataset ${manifest.name}@${manifest.version} has no images to train on; import images first`,
      );
    }
    const parent =
      parsed.data.from === undefined
        ? undefined
        : await this.startingPoint(ctx, parsed.data.from, parsed.data.config.backend);
    const config: TrainConfig =
      parent === undefined
        ? parsed.data.config
        : { ...parsed.data.config, from: { versionId: parent.id, ref: parent.ref } };
    const name = parsed.data.name ?? parent?.name ?? modelNameFrom(`${manifest.name}-${config.backend}`);
    if (!isModelName(name))
      throw new PlatformError(
        'invalid_input',
        `model name "${name}" may only use a-z, 0-9, ".", "_" and "-", starting with a letter or digit`,
      );
    const now = this.o.now();
    const row: JobRow = {
      id: newId('job'),
      project_id: ctx.projectId,
      name,
      dataset_name: manifest.name,
      dataset_version: manifest.version,
      config: JSON.stringify(config),
      backend: config.backend,
      status: 'queued',
      runner_id: null,
      attempt: 1,
      max_attempts: this.o.maxAttempts,
      requested_by: ctx.user.userId,
      thread_id: parsed.data.threadId ?? ctx.threadId ?? null,
      message: null,
      epochs: config.epochs,
      epochs_done: 0,
      last_metrics: null,
      log_tail: '[]',
      log_seq: -1,
      model_version_id: null,
      created_at: now,
      updated_at: now,
      assigned_at: null,
      started_at: null,
      finished_at: null,
      last_seen_at: null,
    };
    await this.o.db.transaction(async (trx) => {
      await trx.insertInto('training_jobs').values(row).execute();
      await recordEffect(trx, ctx, JOB_EFFECT, { jobId: row.id }, now);
      await enqueueIndex(trx, { op: 'upsert', doc: jobSearchDoc(toJob(row)) });
    });
    ctx.log.info(
      { jobId: row.id, dataset: `${manifest.name}@${manifest.version}`, backend: config.backend },
      'training queued',
    );
    this.emit({ type: 'training.queued', projectId: ctx.projectId, at: now, job: toJob(row) });
    await this.dispatch();
    return this.get(ctx, row.id);
  }

  /** The version a fine-tuning starts from: it must have a checkpoint and come from the same backend. */
  private async startingPoint(ctx: CallContext, ref: string, backend: TrainConfig['backend']) {
    const v = await this.o.models.get(ctx, ref);
    if (!v.artifacts.some((a) => a.name === CHECKPOINT_ARTIFACT))
      throw new PlatformError(
        'invalid_input',
        `${v.ref} has no checkpoint (${CHECKPOINT_ARTIFACT}) to fine-tune from: it was trained before checkpoints were kept; train from scratch, or from a newer version of ${v.name}`,
      );
    const trainedWith = (v.lineage.config as { backend?: unknown }).backend;
    if (trainedWith !== backend)
      throw new PlatformError(
        'invalid_input',
        `${v.ref} was trained with the ${String(trainedWith)} backend; fine-tune it with backend ${String(trainedWith)}, not ${backend}`,
      );
    return v;
  }

  /** Cancels a job: a queued one at once; a running one also gets `train.cancel` on its runner. */
  async cancel(ctx: CallContext, jobId: string, reason = 'cancelled by a person'): Promise<TrainingJob> {
    if (!roleAtLeast(ctx.user.role, 'operator'))
      throw new PlatformError(
        'forbidden',
        `cancelling training needs the operator role or above; you are ${ctx.user.role}`,
      );
    const job = await this.row(ctx.projectId, jobId);
    if (isFinalJob(job.status))
      throw new PlatformError('conflict', `job ${jobId} already ${job.status}; nothing to cancel`);
    const now = this.o.now();
    // The runner stays reserved until it confirms (its next heartbeat no longer names the job).
    const done = await this.finish(job, 'cancelled', `${reason} (${ctx.user.name || ctx.user.userId})`, now, {
      keepRunner: true,
    });
    if (!done) return this.cancel(ctx, jobId, reason);
    if (job.runner_id !== null && job.status !== 'queued') {
      await this.publish('train.cancel', { jobId, attempt: Number(job.attempt), reason }, job.runner_id);
    }
    ctx.log.info({ jobId }, 'training cancelled');
    return this.get(ctx, jobId);
  }

  /** One job of the caller's project. */
  async get(ctx: CallContext, jobId: string): Promise<TrainingJob> {
    return toJob(await this.row(ctx.projectId, jobId));
  }

  /** Jobs of the caller's project, newest first. */
  async list(
    ctx: CallContext,
    filter: { status?: JobStatus; offset?: number; limit?: number } = {},
  ): Promise<TrainingJob[]> {
    let q = this.o.db.kysely.selectFrom('training_jobs').selectAll().where('project_id', '=', ctx.projectId);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(Math.max(filter.limit ?? 50, 1), 500))
      .offset(Math.max(filter.offset ?? 0, 0))
      .execute();
    return rows.map(toJob);
  }

  /** Per-epoch metrics of the job's current attempt (or of `attempt`), in epoch order. */
  async metrics(ctx: CallContext, jobId: string, opts: { attempt?: number } = {}): Promise<EpochMetrics[]> {
    const job = await this.row(ctx.projectId, jobId);
    const rows = await this.o.db.kysely
      .selectFrom('training_metrics')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('attempt', '=', opts.attempt ?? Number(job.attempt))
      .orderBy('epoch')
      .execute();
    return rows.map((r) => ({
      attempt: Number(r.attempt),
      epoch: Number(r.epoch),
      epochs: Number(r.epochs),
      metrics: JSON.parse(r.metrics) as Record<string, number>,
      at: Number(r.at),
    }));
  }

  /** The last `tail` log lines of the current attempt (from the database), or with `full` every line (from storage). */
  async logs(
    ctx: CallContext,
    jobId: string,
    opts: { tail?: number; full?: boolean } = {},
  ): Promise<string[]> {
    const job = await this.row(ctx.projectId, jobId);
    if (opts.full) {
      const prefix = `jobs/${jobId}/${Number(job.attempt)}/log/`;
      const parts = (await this.o.storage.list(prefix)).sort((a, b) => a.key.localeCompare(b.key));
      const lines: string[] = [];
      for (const part of parts)
        lines.push(
          ...(await this.o.storage.getBuffer(part.key))
            .toString('utf8')
            .split('\n')
            .filter((l, i, all) => i < all.length - 1 || l !== ''),
        );
      return opts.tail === undefined ? lines : lines.slice(-opts.tail);
    }
    const tail = JSON.parse(job.log_tail) as string[];
    return opts.tail === undefined ? tail : tail.slice(-Math.max(0, opts.tail));
  }

  /** Runners heard from, live or not. */
  async runners(): Promise<RunnerInfo[]> {
    const now = this.o.now();
    const rows = await this.o.db.kysely.selectFrom('training_runners').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      backends: JSON.parse(r.backends) as string[],
      device: JSON.parse(r.device) as unknown,
      version: r.version,
      busyJobId: r.busy_job_id,
      lastSeenAt: Number(r.last_seen_at),
      live: Number(r.last_seen_at) > now - this.o.heartbeatTimeoutMs,
    }));
  }

  /** Subscribes to `vision.telemetry` as the single active named consumer `platform-training`. */
  startConsumers(): Promise<Subscription> {
    return this.o.broker.subscribe(
      STREAMS.telemetry,
      { name: 'platform-training', singleActive: true, from: 'first' },
      (envelope) => this.handleTelemetry(envelope),
    );
  }

  /** Applies one telemetry message; invalid, unknown, stale or duplicate messages are logged and ignored, never thrown. */
  async handleTelemetry(message: unknown): Promise<void> {
    const parsed = parseMessage(message);
    if (!parsed.ok) {
      this.o.log.warn({ error: parsed.error }, 'training consumer skipped an invalid message');
      return;
    }
    const m = parsed.message;
    try {
      // Every handler is idempotent (compare-and-set on the job), so a transient database error retries it whole.
      await retryTransient(async () => {
        switch (m.type) {
          case 'runner.heartbeat':
            return this.onHeartbeat(m.payload);
          case 'train.status':
            return this.onStatus(m.payload);
          case 'train.log':
            return this.onLog(m.payload);
          case 'train.metrics':
            return this.onMetrics(m.payload);
          case 'artifact.ready':
            return this.onArtifact(m.payload);
          default:
            return;
        }
      });
    } catch (err) {
      this.o.log.error(
        { err: (err as Error).message, type: m.type, id: m.id },
        'training consumer failed to apply a message',
      );
    }
  }

  /**
   * Fails or re-queues (attempt + 1, up to maxAttempts) every assigned or running job whose runner
   * has been silent for the heartbeat timeout; call it periodically. Returns the jobs it changed.
   */
  async checkTimeouts(): Promise<TrainingJob[]> {
    const now = this.o.now();
    const cutoff = now - this.o.heartbeatTimeoutMs;
    const stale = await this.o.db.kysely
      .selectFrom('training_jobs')
      .selectAll()
      .where('status', 'in', ACTIVE)
      .where((eb) => eb.or([eb('last_seen_at', '<', cutoff), eb('last_seen_at', 'is', null)]))
      .execute();
    const changed: TrainingJob[] = [];
    for (const job of stale) {
      const attempt = Number(job.attempt);
      const runner = job.runner_id ?? 'the runner';
      if (attempt < Number(job.max_attempts)) {
        const message = `runner ${runner} stopped responding; re-queued (attempt ${attempt + 1} of ${Number(job.max_attempts)})`;
        const ok = await this.o.db.transaction(async (trx) => {
          const res = await trx
            .updateTable('training_jobs')
            .set({
              status: 'queued',
              attempt: attempt + 1,
              runner_id: null,
              message,
              epochs_done: 0,
              last_metrics: null,
              log_tail: '[]',
              log_seq: -1,
              assigned_at: null,
              started_at: null,
              last_seen_at: null,
              updated_at: now,
            })
            .where('id', '=', job.id)
            .where('attempt', '=', attempt)
            .where('status', 'in', ACTIVE)
            .executeTakeFirst();
          if (Number(res.numUpdatedRows) !== 1) return false;
          if (job.runner_id !== null) await this.releaseRunner(trx, job.runner_id, job.id);
          await enqueueIndex(trx, { op: 'upsert', doc: jobSearchDoc(toJob(await this.rowIn(trx, job.id))) });
          return true;
        });
        if (!ok) continue;
        // Should the silent runner still be alive behind a partition, it must stop: the job moves on without it.
        if (job.runner_id !== null)
          await this.publish(
            'train.cancel',
            { jobId: job.id, attempt, reason: 'heartbeat timeout; the job was re-queued' },
            job.runner_id,
          ).catch(() => undefined);
        const fresh = toJob(await this.rowIn(this.o.db.kysely, job.id));
        this.o.log.warn({ jobId: job.id, runner }, message);
        this.emit({ type: 'training.status', projectId: job.project_id, at: now, job: fresh, message });
        changed.push(fresh);
      } else {
        const restart =
          job.runner_id === null
            ? 'a GPU runner is running'
            : `runner ${job.runner_id} is running again (visioninapp gpu-runner --id ${job.runner_id})`;
        const message = `runner ${runner} stopped responding for ${Math.round(this.o.heartbeatTimeoutMs / 1000)} s; the job failed after ${attempt} attempt${attempt === 1 ? '' : 's'}. Check that ${restart}, then start the training again${Number(job.max_attempts) === 1 ? ' (set JOB_MAX_ATTEMPTS above 1 to re-queue such jobs automatically)' : ''}`;
        if (await this.finish(job, 'failed', message, now)) {
          if (job.runner_id !== null)
            await this.publish(
              'train.cancel',
              { jobId: job.id, attempt, reason: 'heartbeat timeout' },
              job.runner_id,
            ).catch(() => undefined);
          changed.push(toJob(await this.rowIn(this.o.db.kysely, job.id)));
        }
      }
    }
    await this.o.db.kysely
      .updateTable('training_runners')
      .set({ busy_job_id: null })
      .where('last_seen_at', '<', cutoff)
      .execute();
    if (changed.length > 0) await this.dispatch();
    return changed;
  }

  /** Runs `checkTimeouts` every `intervalMs` (default a quarter of the heartbeat timeout); returns the stop function. */
  startTimeoutChecks(intervalMs = Math.max(1000, Math.floor(this.o.heartbeatTimeoutMs / 4))): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.checkTimeouts()
        .catch((err: unknown) =>
          this.o.log.error({ err: (err as Error).message }, 'training timeout check failed'),
        )
        .finally(() => {
          running = false;
        });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Assigns queued jobs to free live runners that advertise their backend (also run after each heartbeat). */
  dispatch(): Promise<void> {
    const next = this.dispatching.then(() => this.dispatchOnce());
    this.dispatching = next.catch((err: unknown) =>
      this.o.log.error({ err: (err as Error).message }, 'training dispatch failed'),
    );
    return this.dispatching;
  }

  private async dispatchOnce(): Promise<void> {
    const now = this.o.now();
    const queued = await this.o.db.kysely
      .selectFrom('training_jobs')
      .selectAll()
      .where('status', '=', 'queued')
      .orderBy('created_at')
      .orderBy('id')
      .limit(100)
      .execute();
    if (queued.length === 0) return;
    const free = await this.o.db.kysely
      .selectFrom('training_runners')
      .selectAll()
      .where('busy_job_id', 'is', null)
      .where('last_seen_at', '>', now - this.o.heartbeatTimeoutMs)
      .orderBy('last_seen_at', 'desc')
      .execute();
    const taken = new Set<string>();
    for (const job of queued) {
      const runner = free.find(
        (r) => !taken.has(r.id) && (JSON.parse(r.backends) as string[]).includes(job.backend),
      );
      if (runner === undefined) continue;
      taken.add(runner.id);
      const assigned = await this.o.db
        .transaction(async (trx) => {
          const r = await trx
            .updateTable('training_runners')
            .set({ busy_job_id: job.id })
            .where('id', '=', runner.id)
            .where('busy_job_id', 'is', null)
            .executeTakeFirst();
          if (Number(r.numUpdatedRows) !== 1) throw new NotAssigned();
          const j = await trx
            .updateTable('training_jobs')
            .set({
              status: 'assigned',
              runner_id: runner.id,
              assigned_at: now,
              last_seen_at: now,
              updated_at: now,
              message: `assigned to ${runner.id}`,
            })
            .where('id', '=', job.id)
            .where('status', '=', 'queued')
            .where('attempt', '=', Number(job.attempt))
            .executeTakeFirst();
          if (Number(j.numUpdatedRows) !== 1) throw new NotAssigned();
          await enqueueIndex(trx, { op: 'upsert', doc: jobSearchDoc(toJob(await this.rowIn(trx, job.id))) });
          return true;
        })
        .catch((err: unknown) => {
          if (err instanceof NotAssigned) return false;
          throw err;
        });
      if (!assigned) continue;
      try {
        await this.sendStart(job, runner.id);
      } catch (err) {
        const message = `could not send the job to ${runner.id}: ${(err as Error).message}`;
        this.o.log.error(
          { jobId: job.id, runner: runner.id, err: (err as Error).message },
          'train.start failed; job back in the queue',
        );
        await this.o.db.transaction(async (trx) => {
          await trx
            .updateTable('training_jobs')
            .set({
              status: 'queued',
              runner_id: null,
              assigned_at: null,
              last_seen_at: null,
              message,
              updated_at: this.o.now(),
            })
            .where('id', '=', job.id)
            .where('status', '=', 'assigned')
            .execute();
          await this.releaseRunner(trx, runner.id, job.id);
        });
        if (err instanceof PlatformError && (err.code === 'not_found' || err.code === 'invalid_input')) {
          await this.finish(await this.rowIn(this.o.db.kysely, job.id), 'failed', message, this.o.now());
        }
        continue;
      }
      const fresh = toJob(await this.rowIn(this.o.db.kysely, job.id));
      this.emit({
        type: 'training.assigned',
        projectId: job.project_id,
        at: now,
        job: fresh,
        runnerId: runner.id,
      });
    }
  }

  private async sendStart(job: JobRow, runnerId: string): Promise<void> {
    const ttl = this.o.urlTtlSeconds;
    const ctx: CallContext = {
      user: systemPrincipal(),
      projectId: job.project_id,
      requestId: `dispatch-${job.id}`,
      log: this.o.log,
    };
    const manifest = await this.o.datasets.trainingManifest(
      ctx,
      `${job.dataset_name}@${Number(job.dataset_version)}`,
      (key) => this.o.storage.presignGet(key, ttl),
    );
    const attempt = Number(job.attempt);
    const config = JSON.parse(job.config) as TrainConfig;
    let init: MessagePayload<'train.start'>['init'];
    if (config.from !== undefined) {
      const parent = await this.o.models.get(ctx, config.from.versionId);
      const weights = parent.artifacts.find((a) => a.name === CHECKPOINT_ARTIFACT);
      if (weights === undefined)
        throw new PlatformError(
          'not_found',
          `${parent.ref} has no checkpoint (${CHECKPOINT_ARTIFACT}) to fine-tune from`,
        );
      init = {
        ref: parent.ref,
        url: await this.o.storage.presignGet(weights.key, ttl),
        sha256: weights.sha256,
        size: weights.size,
        classNames: parent.classNames,
      };
    }
    const uploads: Record<string, { url: string; key: string }> = {};
    for (const name of JOB_ARTIFACTS) {
      const key = `jobs/${job.id}/${attempt}/${name}`;
      uploads[name] = { key, url: await this.o.storage.presignPut(key, ttl) };
    }
    await this.publish(
      'train.start',
      {
        jobId: job.id,
        attempt,
        runnerId,
        config,
        dataset: {
          name: manifest.name,
          version: manifest.version,
          classNames: manifest.classNames,
          files: manifest.files,
        },
        uploads,
        ...(init ? { init } : {}),
      },
      runnerId,
    );
  }

  private async onHeartbeat(p: MessagePayload<'runner.heartbeat'>): Promise<void> {
    const now = this.o.now();
    const values = {
      id: p.runnerId,
      backends: JSON.stringify(p.backends),
      device: JSON.stringify(p.device),
      version: p.version ?? null,
      busy_job_id: null,
      last_seen_at: now,
    };
    const update = {
      backends: values.backends,
      device: values.device,
      version: values.version,
      last_seen_at: now,
    };
    if (this.o.db.dialect === 'mysql')
      await this.o.db.kysely
        .insertInto('training_runners')
        .values(values)
        .onDuplicateKeyUpdate(update)
        .execute();
    else
      await this.o.db.kysely
        .insertInto('training_runners')
        .values(values)
        .onConflict((oc) => oc.column('id').doUpdateSet(update))
        .execute();
    if (p.busyJobId !== undefined) {
      await this.o.db.kysely
        .updateTable('training_jobs')
        .set({ last_seen_at: now })
        .where('id', '=', p.busyJobId)
        .where('runner_id', '=', p.runnerId)
        .where('status', 'in', ACTIVE)
        .execute();
    }
    const runner = await this.o.db.kysely
      .selectFrom('training_runners')
      .select('busy_job_id')
      .where('id', '=', p.runnerId)
      .executeTakeFirstOrThrow();
    if (runner.busy_job_id !== null && runner.busy_job_id !== p.busyJobId) {
      // Keep the reservation while the job still belongs to this runner (train.start may be in flight).
      const job = await this.o.db.kysely
        .selectFrom('training_jobs')
        .select(['status', 'runner_id'])
        .where('id', '=', runner.busy_job_id)
        .executeTakeFirst();
      if (job === undefined || !ACTIVE.includes(job.status) || job.runner_id !== p.runnerId) {
        await this.o.db.kysely
          .updateTable('training_runners')
          .set({ busy_job_id: null })
          .where('id', '=', p.runnerId)
          .where('busy_job_id', '=', runner.busy_job_id)
          .execute();
      } else if (job.status === 'assigned') {
        await this.resendStart(runner.busy_job_id, p.runnerId, now);
      }
    }
    await this.dispatch();
  }

  /** When each job's train.start was last sent again (job#attempt → ms), so a silent runner gets it once per grace period. */
  private readonly resent = new Map<string, number>();

  /**
   * A job assigned to a runner that keeps saying it is idle never got its train.start: the platform
   * stopped between recording the assignment and publishing it. After a grace period (the message may
   * still be in flight) it is sent again for the same attempt; a runner that did get it ignores the
   * repeat (its claims are per job and attempt), so the job runs once.
   */
  private async resendStart(jobId: string, runnerId: string, now: number): Promise<void> {
    const row = await this.rowIn(this.o.db.kysely, jobId);
    const key = `${row.id}#${Number(row.attempt)}`;
    const since = Math.max(Number(row.assigned_at ?? 0), this.resent.get(key) ?? 0);
    if (row.status !== 'assigned' || row.runner_id !== runnerId || now - since < START_GRACE_MS) return;
    this.resent.set(key, now);
    if (this.resent.size > 1000) this.resent.delete(this.resent.keys().next().value!);
    this.o.log.warn(
      { jobId, runner: runnerId, attempt: Number(row.attempt) },
      'runner is idle but its assigned job never started; sending train.start again',
    );
    await this.sendStart(row, runnerId).catch((err: unknown) =>
      this.o.log.error(
        { jobId, runner: runnerId, err: (err as Error).message },
        'sending train.start again failed; retrying on the next heartbeat',
      ),
    );
  }

  private async onStatus(p: MessagePayload<'train.status'>): Promise<void> {
    const job = await this.current(p.jobId, p.attempt);
    if (job === undefined) return;
    if (job.runner_id !== p.runnerId) {
      this.o.log.warn(
        { jobId: p.jobId, runner: p.runnerId, owner: job.runner_id },
        'a runner that does not own the job reported on it; telling it to stop',
      );
      await this.publish(
        'train.cancel',
        { jobId: p.jobId, attempt: p.attempt, reason: `job is assigned to ${job.runner_id ?? 'no runner'}` },
        p.runnerId,
      );
      return;
    }
    const now = this.o.now();
    switch (p.status) {
      case 'claimed':
      case 'succeeded':
        await this.touch(
          job.id,
          now,
          p.message ??
            (p.status === 'claimed'
              ? `claimed by ${p.runnerId}`
              : 'training finished; waiting for artifacts'),
        );
        return;
      case 'running': {
        const res = await this.o.db.transaction(async (trx) => {
          const r = await trx
            .updateTable('training_jobs')
            .set({
              status: 'running',
              started_at: now,
              last_seen_at: now,
              updated_at: now,
              message: p.message ?? `running on ${p.runnerId}`,
            })
            .where('id', '=', job.id)
            .where('attempt', '=', p.attempt)
            .where('status', '=', 'assigned')
            .executeTakeFirst();
          if (Number(r.numUpdatedRows) === 1)
            await enqueueIndex(trx, {
              op: 'upsert',
              doc: jobSearchDoc(toJob(await this.rowIn(trx, job.id))),
            });
          return Number(r.numUpdatedRows) === 1;
        });
        if (res) {
          const fresh = toJob(await this.rowIn(this.o.db.kysely, job.id));
          this.emit({
            type: 'training.status',
            projectId: job.project_id,
            at: now,
            job: fresh,
            message: fresh.message ?? 'running',
          });
        } else await this.touch(job.id, now);
        return;
      }
      case 'failed':
      case 'cancelled':
        await this.finish(job, p.status, p.message ?? `${p.status} on ${p.runnerId}`, now);
        return;
    }
  }

  private async onLog(p: MessagePayload<'train.log'>): Promise<void> {
    const job = await this.current(p.jobId, p.attempt);
    if (job === undefined || p.seq <= Number(job.log_seq)) return;
    const key = `jobs/${p.jobId}/${p.attempt}/log/${String(p.seq).padStart(8, '0')}.txt`;
    await this.o.storage.put(key, Buffer.from(p.lines.map((l) => `${l}\n`).join(''), 'utf8'), {
      contentType: 'text/plain',
    });
    const tail = [...(JSON.parse(job.log_tail) as string[]), ...p.lines].slice(-this.o.logTailLines);
    const now = this.o.now();
    const res = await this.o.db.kysely
      .updateTable('training_jobs')
      .set({ log_tail: JSON.stringify(tail), log_seq: p.seq, last_seen_at: now, updated_at: now })
      .where('id', '=', p.jobId)
      .where('attempt', '=', p.attempt)
      .where('log_seq', '=', Number(job.log_seq))
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 1)
      this.emit({
        type: 'training.log',
        projectId: job.project_id,
        at: now,
        jobId: p.jobId,
        attempt: p.attempt,
        lines: p.lines,
      });
  }

  private async onMetrics(p: MessagePayload<'train.metrics'>): Promise<void> {
    const job = await this.current(p.jobId, p.attempt);
    if (job === undefined) return;
    const now = this.o.now();
    const event = {
      type: 'training.metrics' as const,
      projectId: job.project_id,
      at: now,
      jobId: p.jobId,
      attempt: p.attempt,
      epoch: p.epoch,
      epochs: p.epochs,
      kind: p.kind,
      ...(p.batch === undefined ? {} : { batch: p.batch }),
      ...(p.batches === undefined ? {} : { batches: p.batches }),
      metrics: p.metrics,
    };
    if (p.kind === 'progress') {
      await this.touch(job.id, now);
      this.emit(event);
      return;
    }
    const inserted = await this.o.db.transaction(async (trx) => {
      const values = {
        job_id: p.jobId,
        attempt: p.attempt,
        epoch: p.epoch,
        epochs: p.epochs,
        metrics: JSON.stringify(p.metrics),
        at: now,
      };
      const res =
        this.o.db.dialect === 'mysql'
          ? await trx.insertInto('training_metrics').ignore().values(values).executeTakeFirst()
          : await trx
              .insertInto('training_metrics')
              .values(values)
              .onConflict((oc) => oc.doNothing())
              .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
      const count = await trx
        .selectFrom('training_metrics')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('job_id', '=', p.jobId)
        .where('attempt', '=', p.attempt)
        .executeTakeFirstOrThrow();
      await trx
        .updateTable('training_jobs')
        .set({
          epochs_done: Number(count.n),
          epochs: p.epochs,
          last_metrics: JSON.stringify(p.metrics),
          last_seen_at: now,
          updated_at: now,
          ...(job.status === 'assigned' ? { status: 'running' as const, started_at: now } : {}),
        })
        .where('id', '=', p.jobId)
        .where('attempt', '=', p.attempt)
        .where('status', 'in', ACTIVE)
        .execute();
      return true;
    });
    if (inserted) this.emit(event);
  }

  private async onArtifact(p: MessagePayload<'artifact.ready'>): Promise<void> {
    const job = await this.current(p.jobId, p.attempt);
    if (job === undefined) return;
    if (job.runner_id !== null && job.runner_id !== p.runnerId) {
      this.o.log.warn(
        { jobId: p.jobId, runner: p.runnerId },
        'artifacts from a runner that does not own the job ignored',
      );
      return;
    }
    const problem = await this.artifactProblem(p);
    if (problem !== undefined) {
      this.o.log.error({ jobId: p.jobId, problem }, 'artifacts refused');
      await this.finish(job, 'failed', `artifacts refused: ${problem}`, this.o.now());
      return;
    }
    const now = this.o.now();
    const result = await this.o.db.transaction(async (trx) => {
      const res = await trx
        .updateTable('training_jobs')
        .set({
          status: 'succeeded',
          finished_at: now,
          updated_at: now,
          last_seen_at: now,
          message: 'succeeded',
        })
        .where('id', '=', p.jobId)
        .where('attempt', '=', p.attempt)
        .where('status', 'in', ACTIVE)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return undefined;
      const { version } = await this.o.models.registerFromArtifact(
        {
          projectId: job.project_id,
          name: job.name,
          job: {
            id: job.id,
            attempt: p.attempt,
            runnerId: p.runnerId,
            config: JSON.parse(job.config) as TrainConfig,
            dataset: { name: job.dataset_name, version: Number(job.dataset_version) },
          },
          artifact: p,
          createdBy: job.requested_by,
        },
        trx,
      );
      await trx
        .updateTable('training_jobs')
        .set({ model_version_id: version.id, message: `succeeded: ${version.ref}` })
        .where('id', '=', p.jobId)
        .execute();
      await this.releaseRunner(trx, p.runnerId, p.jobId);
      await enqueueIndex(trx, { op: 'upsert', doc: jobSearchDoc(toJob(await this.rowIn(trx, p.jobId))) });
      return version;
    });
    if (result === undefined) return;
    this.o.models.emitRegistered(result);
    const fresh = toJob(await this.rowIn(this.o.db.kysely, p.jobId));
    this.o.log.info({ jobId: p.jobId, model: result.ref }, 'training succeeded');
    this.emit({
      type: 'training.finished',
      projectId: job.project_id,
      at: now,
      job: fresh,
      status: 'succeeded',
      modelRef: result.ref,
    });
    await this.dispatch();
  }

  /**
   * Why the reported artifacts cannot be registered: a key outside this attempt's folder, or a
   * model file that is missing from storage or whose bytes do not match the reported sha256.
   */
  private async artifactProblem(p: MessagePayload<'artifact.ready'>): Promise<string | undefined> {
    const prefix = `jobs/${p.jobId}/${p.attempt}/`;
    const outside = p.artifacts.find((a) => !a.key.startsWith(prefix) || a.key.includes('..'));
    if (outside !== undefined) return `${outside.name} points at ${outside.key}, outside ${prefix}`;
    const onnx = p.artifacts.find((a) => a.name === 'model.onnx');
    if (onnx === undefined) return `no model.onnx among ${p.artifacts.map((a) => a.name).join(', ')}`;
    const stored = await this.o.storage.head(onnx.key);
    if (stored === undefined) return `model.onnx was reported but is not in storage at ${onnx.key}`;
    if (stored.size !== onnx.size)
      return `model.onnx in storage has ${stored.size} bytes, the runner reported ${onnx.size}`;
    if (stored.sha256 !== undefined && stored.sha256 !== onnx.sha256) {
      return `model.onnx in storage has sha256 ${stored.sha256.slice(0, 12)}…, the runner reported ${onnx.sha256.slice(0, 12)}…`;
    }
    return undefined;
  }

  /** Moves an unfinished job to a final state (compare-and-set); false when it already moved on. */
  private async finish(
    job: JobRow,
    status: 'failed' | 'cancelled',
    message: string,
    now: number,
    opts: { keepRunner?: boolean } = {},
  ): Promise<boolean> {
    const ok = await this.o.db.transaction(async (trx) => {
      const res = await trx
        .updateTable('training_jobs')
        .set({ status, message, finished_at: now, updated_at: now })
        .where('id', '=', job.id)
        .where('attempt', '=', Number(job.attempt))
        .where('status', '=', job.status)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      if (job.runner_id !== null && !opts.keepRunner) await this.releaseRunner(trx, job.runner_id, job.id);
      await enqueueIndex(trx, { op: 'upsert', doc: jobSearchDoc(toJob(await this.rowIn(trx, job.id))) });
      return true;
    });
    if (!ok) return false;
    const fresh = toJob(await this.rowIn(this.o.db.kysely, job.id));
    this.emit({ type: 'training.finished', projectId: job.project_id, at: now, job: fresh, status });
    if (job.runner_id !== null) await this.dispatch();
    return true;
  }

  private async current(jobId: string, attempt: number): Promise<JobRow | undefined> {
    const job = await this.o.db.kysely
      .selectFrom('training_jobs')
      .selectAll()
      .where('id', '=', jobId)
      .executeTakeFirst();
    if (job === undefined) {
      this.o.log.debug({ jobId }, 'telemetry for an unknown job ignored');
      return undefined;
    }
    if (Number(job.attempt) !== attempt || isFinalJob(job.status)) {
      this.o.log.debug(
        { jobId, attempt, current: Number(job.attempt), status: job.status },
        'telemetry of a stale attempt or finished job ignored',
      );
      return undefined;
    }
    return job;
  }

  private async touch(jobId: string, now: number, message?: string): Promise<void> {
    await this.o.db.kysely
      .updateTable('training_jobs')
      .set({ last_seen_at: now, updated_at: now, ...(message === undefined ? {} : { message }) })
      .where('id', '=', jobId)
      .where('status', 'in', ACTIVE)
      .execute();
  }

  private async releaseRunner(trx: Transaction<Database>, runnerId: string, jobId: string): Promise<void> {
    await trx
      .updateTable('training_runners')
      .set({ busy_job_id: null })
      .where('id', '=', runnerId)
      .where('busy_job_id', '=', jobId)
      .execute();
  }

  private async row(projectId: string, jobId: string): Promise<JobRow> {
    const row = await this.o.db.kysely
      .selectFrom('training_jobs')
      .selectAll()
      .where('id', '=', jobId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    if (row === undefined)
      throw new PlatformError(
        'not_found',
        `training job "${jobId}" not found in project "${projectId}"; list jobs to find the right id`,
      );
    return row;
  }

  private rowIn(db: Transaction<Database> | Db['kysely'], jobId: string): Promise<JobRow> {
    return db.selectFrom('training_jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
  }

  private async publish<T extends 'train.start' | 'train.cancel'>(
    type: T,
    payload: MessagePayload<T>,
    target: string,
  ): Promise<void> {
    await this.o.broker.publish(
      STREAMS.control,
      makeEnvelope(type, payload, { source: this.o.source, target }),
    );
  }

  private emit(event: TrainingEvent): void {
    this.o.events.emit(event);
  }
}

/** Every training job as a search document, for a full reindex. */
export async function* trainingSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  let offset = 0;
  for (;;) {
    const rows = await db.kysely
      .selectFrom('training_jobs')
      .selectAll()
      .orderBy('id')
      .limit(500)
      .offset(offset)
      .execute();
    for (const row of rows) yield jobSearchDoc(toJob(row));
    if (rows.length < 500) return;
    offset += rows.length;
  }
}

/** The search document of a job (kind `job`, id = job id). */
export function jobSearchDoc(job: TrainingJob): SearchDoc {
  const fields: Record<string, string | number | boolean> = {
    status: job.status,
    backend: job.config.backend,
    dataset: job.dataset,
    model: job.name,
    attempt: job.attempt,
  };
  if (job.runnerId !== null) fields.runner = job.runnerId;
  return {
    kind: 'job',
    id: job.id,
    projectId: job.projectId,
    title: `train ${job.name} on ${job.dataset}`,
    text: [job.name, job.dataset, job.config.backend, job.config.model, job.status, job.message ?? '']
      .filter(Boolean)
      .join(' '),
    tags: ['training', job.status],
    fields,
    updatedAt: job.updatedAt,
  };
}

function toJob(row: JobRow): TrainingJob {
  return {
    id: row.id,
    projectId: row.project_id,
    name: row.name,
    dataset: `${row.dataset_name}@${Number(row.dataset_version)}`,
    config: JSON.parse(row.config) as TrainConfig,
    status: row.status,
    runnerId: row.runner_id,
    attempt: Number(row.attempt),
    maxAttempts: Number(row.max_attempts),
    requestedBy: row.requested_by,
    threadId: row.thread_id,
    message: row.message,
    epochsDone: Number(row.epochs_done),
    epochs: Number(row.epochs),
    lastMetrics: row.last_metrics === null ? null : (JSON.parse(row.last_metrics) as Record<string, number>),
    modelVersionId: row.model_version_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    assignedAt: row.assigned_at === null ? null : Number(row.assigned_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    lastSeenAt: row.last_seen_at === null ? null : Number(row.last_seen_at),
  };
}
