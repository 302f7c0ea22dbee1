import { z } from 'zod';
import { requireRole, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { Subscription } from '../infra/broker/port.js';
import { newId } from '../../core/ids.js';
import { trainConfigSchema, type TrainConfig } from '../../protocol/envelope.js';
import { priorEffect, recordEffect } from '../effects.js';
import { isModelName, modelNameFrom } from '../models/model.registry.js';
import {
  CHECKPOINT_ARTIFACT,
  isFinalJob,
  type JobStatus,
  type TrainingJob,
  type EpochMetrics,
  type RunnerInfo,
  type StartTrainingInput,
} from './model.js';
import { TrainingDispatcher } from './training.dispatcher.js';
import { trainingSettings, type TrainingServiceOptions, type TrainingSettings } from './training.options.js';
import { toJob, TrainingRepository, type JobRow } from './training.repository.js';
import { indexJob } from './training.search.js';
import { TrainingTelemetry } from './training.telemetry.js';

export type { TrainingServiceOptions } from './training.options.js';

/** The idempotent-effect kind of a created training job. */
const JOB_EFFECT = 'training.job';

const startSchema = z.object({
  dataset: z.string().trim().min(1, 'name a dataset, e.g. "helmets-v2" or "helmets-v2@3"').max(200),
  config: trainConfigSchema,
  name: z.string().trim().min(1).max(100).optional(),
  threadId: z.string().min(1).max(191).optional(),
  from: z.string().trim().min(1).max(200).optional(),
});

/**
 * The platform side of training, as use cases: start (with fine-tuning from a kept checkpoint),
 * cancel, and the reads. SQL lives in `TrainingRepository`, assignment to runners and the final
 * states in `TrainingDispatcher`, the telemetry consumer and heartbeat timeouts in
 * `TrainingTelemetry`, search documents in `training.search.ts`.
 */
export class TrainingService {
  private readonly o: TrainingSettings;
  private readonly repo: TrainingRepository;
  private readonly jobs: TrainingDispatcher;
  private readonly telemetry: TrainingTelemetry;

  constructor(opts: TrainingServiceOptions) {
    this.o = trainingSettings(opts);
    this.repo = new TrainingRepository(this.o.db.kysely, this.o.db.dialect);
    this.jobs = new TrainingDispatcher(this.o, this.repo);
    this.telemetry = new TrainingTelemetry(this.o, this.repo, this.jobs);
  }

  /** Creates a job for a dataset version and a config, and hands it to a live runner when one can take it. */
  async start(ctx: CallContext, input: StartTrainingInput): Promise<TrainingJob> {
    requireRole(ctx, 'operator', 'starting training');
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
      await this.repo.in(trx).insert(row);
      await recordEffect(trx, ctx, JOB_EFFECT, { jobId: row.id }, now);
      await indexJob(trx, row);
    });
    ctx.log.info(
      { jobId: row.id, dataset: `${manifest.name}@${manifest.version}`, backend: config.backend },
      'training queued',
    );
    this.jobs.emit({ type: 'training.queued', projectId: ctx.projectId, at: now, job: toJob(row) });
    await this.jobs.dispatch();
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
    requireRole(ctx, 'operator', 'cancelling training');
    const job = await this.row(ctx.projectId, jobId);
    if (isFinalJob(job.status))
      throw new PlatformError('conflict', `job ${jobId} already ${job.status}; nothing to cancel`);
    const now = this.o.now();
    // The runner stays reserved until it confirms (its next heartbeat no longer names the job).
    const done = await this.jobs.finish(
      job,
      'cancelled',
      `${reason} (${ctx.user.name || ctx.user.userId})`,
      now,
      {
        keepRunner: true,
      },
    );
    if (!done) return this.cancel(ctx, jobId, reason);
    if (job.runner_id !== null && job.status !== 'queued') {
      await this.jobs.publish('train.cancel', { jobId, attempt: Number(job.attempt), reason }, job.runner_id);
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
    return (await this.repo.list(ctx.projectId, filter)).map(toJob);
  }

  /** Per-epoch metrics of the job's current attempt (or of `attempt`), in epoch order. */
  async metrics(ctx: CallContext, jobId: string, opts: { attempt?: number } = {}): Promise<EpochMetrics[]> {
    const job = await this.row(ctx.projectId, jobId);
    return this.repo.metrics(jobId, opts.attempt ?? Number(job.attempt));
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
    return this.repo.runners(this.o.now(), this.o.heartbeatTimeoutMs);
  }

  /** Subscribes to `vision.telemetry` as the single active named consumer `platform-training`. */
  startConsumers(): Promise<Subscription> {
    return this.telemetry.startConsumers();
  }

  /** Applies one telemetry message; invalid, unknown, stale or duplicate messages are logged and ignored, never thrown. */
  handleTelemetry(message: unknown): Promise<void> {
    return this.telemetry.handleTelemetry(message);
  }

  /**
   * Fails or re-queues (attempt + 1, up to maxAttempts) every assigned or running job whose runner
   * has been silent for the heartbeat timeout; call it periodically. Returns the jobs it changed.
   */
  checkTimeouts(): Promise<TrainingJob[]> {
    return this.telemetry.checkTimeouts();
  }

  /** Runs `checkTimeouts` every `intervalMs` (default a quarter of the heartbeat timeout); returns the stop function. */
  startTimeoutChecks(intervalMs?: number): () => void {
    return this.telemetry.startTimeoutChecks(intervalMs);
  }

  /** Assigns queued jobs to free live runners that advertise their backend (also run after each heartbeat). */
  dispatch(): Promise<void> {
    return this.jobs.dispatch();
  }

  private async row(projectId: string, jobId: string): Promise<JobRow> {
    const row = await this.repo.find(projectId, jobId);
    if (row === undefined)
      throw new PlatformError(
        'not_found',
        `training job "${jobId}" not found in project "${projectId}"; list jobs to find the right id`,
      );
    return row;
  }
}
