import { systemPrincipal, type CallContext } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import { makeEnvelope, type MessagePayload, type TrainConfig } from '../../protocol/envelope.js';
import { STREAMS } from '../infra/broker/port.js';
import type { TrainingEvent } from './events.js';
import { CHECKPOINT_ARTIFACT, JOB_ARTIFACTS } from './model.js';
import type { TrainingSettings } from './training.options.js';
import { toJob, type JobRow, type TrainingRepository } from './training.repository.js';
import { indexJob } from './training.search.js';

/** How long an assigned job may wait for its runner to take it before train.start is sent again. */
const START_GRACE_MS = 10_000;

class NotAssigned extends Error {}

/**
 * Hands jobs to runners and ends them: assignment of each queued job to exactly one free live
 * runner that advertised its backend, `train.start`/`train.cancel` on `vision.control`, and the
 * compare-and-set move of a job to a final state.
 */
export class TrainingDispatcher {
  private dispatching: Promise<void> = Promise.resolve();
  /** When each job's train.start was last sent again (job#attempt → ms), so a silent runner gets it once per grace period. */
  private readonly resent = new Map<string, number>();

  constructor(
    private readonly o: TrainingSettings,
    private readonly repo: TrainingRepository,
  ) {}

  /** Assigns queued jobs to free live runners that advertise their backend (also run after each heartbeat). */
  dispatch(): Promise<void> {
    const next = this.dispatching.then(() => this.dispatchOnce());
    this.dispatching = next.catch((err: unknown) =>
      this.o.log.error({ err: (err as Error).message }, 'training dispatch failed'),
    );
    return this.dispatching;
  }

  /** Moves an unfinished job to a final state (compare-and-set); false when it already moved on. */
  async finish(
    job: JobRow,
    status: 'failed' | 'cancelled',
    message: string,
    now: number,
    opts: { keepRunner?: boolean } = {},
  ): Promise<boolean> {
    const ok = await this.o.db.transaction(async (trx) => {
      const repo = this.repo.in(trx);
      if (!(await repo.finish(job, status, message, now))) return false;
      if (job.runner_id !== null && !opts.keepRunner) await repo.releaseRunner(job.runner_id, job.id);
      await indexJob(trx, await repo.byId(job.id));
      return true;
    });
    if (!ok) return false;
    const fresh = toJob(await this.repo.byId(job.id));
    this.emit({ type: 'training.finished', projectId: job.project_id, at: now, job: fresh, status });
    if (job.runner_id !== null) await this.dispatch();
    return true;
  }

  /**
   * A job assigned to a runner that keeps saying it is idle never got its train.start: the platform
   * stopped between recording the assignment and publishing it. After a grace period (the message may
   * still be in flight) it is sent again for the same attempt; a runner that did get it ignores the
   * repeat (its claims are per job and attempt), so the job runs once.
   */
  async resendStart(jobId: string, runnerId: string, now: number): Promise<void> {
    const row = await this.repo.byId(jobId);
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

  /** Publishes a control message to one runner. */
  async publish<T extends 'train.start' | 'train.cancel'>(
    type: T,
    payload: MessagePayload<T>,
    target: string,
  ): Promise<void> {
    await this.o.broker.publish(
      STREAMS.control,
      makeEnvelope(type, payload, { source: this.o.source, target }),
    );
  }

  emit(event: TrainingEvent): void {
    this.o.events.emit(event);
  }

  private async dispatchOnce(): Promise<void> {
    const now = this.o.now();
    const queued = await this.repo.queued(100);
    if (queued.length === 0) return;
    const free = await this.repo.freeRunners(now - this.o.heartbeatTimeoutMs);
    const taken = new Set<string>();
    for (const job of queued) {
      const runner = free.find(
        (r) => !taken.has(r.id) && (JSON.parse(r.backends) as string[]).includes(job.backend),
      );
      if (runner === undefined) continue;
      taken.add(runner.id);
      const assigned = await this.o.db
        .transaction(async (trx) => {
          const repo = this.repo.in(trx);
          if (!(await repo.reserveRunner(runner.id, job.id))) throw new NotAssigned();
          if (!(await repo.assign(job, runner.id, now))) throw new NotAssigned();
          await indexJob(trx, await repo.byId(job.id));
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
        await this.startFailed(job, runner.id, err);
        continue;
      }
      const fresh = toJob(await this.repo.byId(job.id));
      this.emit({
        type: 'training.assigned',
        projectId: job.project_id,
        at: now,
        job: fresh,
        runnerId: runner.id,
      });
    }
  }

  /** train.start could not be sent: the job goes back in the queue, or fails when it can never start. */
  private async startFailed(job: JobRow, runnerId: string, err: unknown): Promise<void> {
    const message = `could not send the job to ${runnerId}: ${(err as Error).message}`;
    this.o.log.error(
      { jobId: job.id, runner: runnerId, err: (err as Error).message },
      'train.start failed; job back in the queue',
    );
    await this.o.db.transaction(async (trx) => {
      const repo = this.repo.in(trx);
      await repo.unassign(job.id, message, this.o.now());
      await repo.releaseRunner(runnerId, job.id);
    });
    if (err instanceof PlatformError && (err.code === 'not_found' || err.code === 'invalid_input')) {
      await this.finish(await this.repo.byId(job.id), 'failed', message, this.o.now());
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
}
