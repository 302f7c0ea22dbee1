// size: 415 lines, at the ~400 bound: the training domain's SQL only (jobs, runners, metrics), one room.
import type { Kysely, Selectable } from 'kysely';
import { page, type PageRequest } from '../../core/paging.js';
import type { MessagePayload, TrainConfig } from '../../protocol/envelope.js';
import type { DbDialect } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { EpochMetrics, JobStatus, RunnerInfo, TrainingJob } from './model.js';

/** A training job row. */
export type JobRow = Selectable<Database['training_jobs']>;
/** A training runner row. */
export type RunnerRow = Selectable<Database['training_runners']>;

/** The states in which a job belongs to a runner. */
export const ACTIVE: JobStatus[] = ['assigned', 'running'];

/** The training domain's SQL, on a database or an open transaction; every update that moves a job is a compare-and-set. */
export class TrainingRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DbDialect,
  ) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): TrainingRepository {
    return new TrainingRepository(trx, this.dialect);
  }

  find(projectId: string, jobId: string): Promise<JobRow | undefined> {
    return this.db
      .selectFrom('training_jobs')
      .selectAll()
      .where('id', '=', jobId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
  }

  /** A job by id in any project (telemetry names jobs, not projects). */
  findById(jobId: string): Promise<JobRow | undefined> {
    return this.db.selectFrom('training_jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
  }

  byId(jobId: string): Promise<JobRow> {
    return this.db.selectFrom('training_jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
  }

  list(projectId: string, filter: { status?: JobStatus } & PageRequest): Promise<JobRow[]> {
    const { limit, offset } = page(filter, { default: 50, max: 500 });
    let q = this.db.selectFrom('training_jobs').selectAll().where('project_id', '=', projectId);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute();
  }

  /** Every job in id order, `size` at a time (for a full reindex). */
  async *all(size = 500): AsyncIterable<JobRow> {
    for (let offset = 0; ; offset += size) {
      const rows = await this.db
        .selectFrom('training_jobs')
        .selectAll()
        .orderBy('id')
        .limit(size)
        .offset(offset)
        .execute();
      yield* rows;
      if (rows.length < size) return;
    }
  }

  insert(row: JobRow): Promise<unknown> {
    return this.db.insertInto('training_jobs').values(row).execute();
  }

  async metrics(jobId: string, attempt: number): Promise<EpochMetrics[]> {
    const rows = await this.db
      .selectFrom('training_metrics')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('attempt', '=', attempt)
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

  async runners(now: number, heartbeatTimeoutMs: number): Promise<RunnerInfo[]> {
    const rows = await this.db.selectFrom('training_runners').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      backends: JSON.parse(r.backends) as string[],
      device: JSON.parse(r.device) as unknown,
      version: r.version,
      busyJobId: r.busy_job_id,
      lastSeenAt: Number(r.last_seen_at),
      live: Number(r.last_seen_at) > now - heartbeatTimeoutMs,
    }));
  }

  /** Assigned or running jobs whose runner has not been heard from since `cutoff`. */
  silentJobs(cutoff: number): Promise<JobRow[]> {
    return this.db
      .selectFrom('training_jobs')
      .selectAll()
      .where('status', 'in', ACTIVE)
      .where((eb) => eb.or([eb('last_seen_at', '<', cutoff), eb('last_seen_at', 'is', null)]))
      .execute();
  }

  /** Puts an active job back in the queue as its next attempt; false when it already moved on. */
  async requeue(job: JobRow, message: string, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('training_jobs')
      .set({
        status: 'queued',
        attempt: Number(job.attempt) + 1,
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
      .where('attempt', '=', Number(job.attempt))
      .where('status', 'in', ACTIVE)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Moves a job from the state it was read in to a final state; false when it already moved on. */
  async finish(job: JobRow, status: 'failed' | 'cancelled', message: string, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('training_jobs')
      .set({ status, message, finished_at: now, updated_at: now })
      .where('id', '=', job.id)
      .where('attempt', '=', Number(job.attempt))
      .where('status', '=', job.status)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Marks an active attempt succeeded; false when it already moved on. */
  async succeed(jobId: string, attempt: number, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('training_jobs')
      .set({
        status: 'succeeded',
        finished_at: now,
        updated_at: now,
        last_seen_at: now,
        message: 'succeeded',
      })
      .where('id', '=', jobId)
      .where('attempt', '=', attempt)
      .where('status', 'in', ACTIVE)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async setModelVersion(jobId: string, versionId: string, message: string): Promise<void> {
    await this.db
      .updateTable('training_jobs')
      .set({ model_version_id: versionId, message })
      .where('id', '=', jobId)
      .execute();
  }

  /** Moves an assigned attempt to running; false when it is not assigned (any more). */
  async markRunning(jobId: string, attempt: number, message: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('training_jobs')
      .set({ status: 'running', started_at: now, last_seen_at: now, updated_at: now, message })
      .where('id', '=', jobId)
      .where('attempt', '=', attempt)
      .where('status', '=', 'assigned')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Records that an active job's runner was heard from (and its message, when given). */
  async touch(jobId: string, now: number, message?: string): Promise<void> {
    await this.db
      .updateTable('training_jobs')
      .set({ last_seen_at: now, updated_at: now, ...(message === undefined ? {} : { message }) })
      .where('id', '=', jobId)
      .where('status', 'in', ACTIVE)
      .execute();
  }

  /** Stores the new log tail when no other line batch got there first (compare-and-set on `log_seq`). */
  async appendLog(job: JobRow, attempt: number, seq: number, tail: string[], now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('training_jobs')
      .set({ log_tail: JSON.stringify(tail), log_seq: seq, last_seen_at: now, updated_at: now })
      .where('id', '=', job.id)
      .where('attempt', '=', attempt)
      .where('log_seq', '=', Number(job.log_seq))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Records one epoch's metrics and the job's progress; false when this epoch was already recorded
   * (a repeated message).
   */
  async addEpoch(job: JobRow, p: MessagePayload<'train.metrics'>, now: number): Promise<boolean> {
    const values = {
      job_id: p.jobId,
      attempt: p.attempt,
      epoch: p.epoch,
      epochs: p.epochs,
      metrics: JSON.stringify(p.metrics),
      at: now,
    };
    const res =
      this.dialect === 'mysql'
        ? await this.db.insertInto('training_metrics').ignore().values(values).executeTakeFirst()
        : await this.db
            .insertInto('training_metrics')
            .values(values)
            .onConflict((oc) => oc.doNothing())
            .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
    const count = await this.db
      .selectFrom('training_metrics')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('job_id', '=', p.jobId)
      .where('attempt', '=', p.attempt)
      .executeTakeFirstOrThrow();
    await this.db
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
  }

  /** Up to `limit` queued jobs, oldest first. */
  queued(limit: number): Promise<JobRow[]> {
    return this.db
      .selectFrom('training_jobs')
      .selectAll()
      .where('status', '=', 'queued')
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  /** Runners with no job, heard from since `since`, most recently heard first. */
  freeRunners(since: number): Promise<RunnerRow[]> {
    return this.db
      .selectFrom('training_runners')
      .selectAll()
      .where('busy_job_id', 'is', null)
      .where('last_seen_at', '>', since)
      .orderBy('last_seen_at', 'desc')
      .execute();
  }

  /** Reserves a free runner for a job; false when it is no longer free. */
  async reserveRunner(runnerId: string, jobId: string): Promise<boolean> {
    const r = await this.db
      .updateTable('training_runners')
      .set({ busy_job_id: jobId })
      .where('id', '=', runnerId)
      .where('busy_job_id', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Assigns a queued attempt to a runner; false when it is no longer queued. */
  async assign(job: JobRow, runnerId: string, now: number): Promise<boolean> {
    const j = await this.db
      .updateTable('training_jobs')
      .set({
        status: 'assigned',
        runner_id: runnerId,
        assigned_at: now,
        last_seen_at: now,
        updated_at: now,
        message: `assigned to ${runnerId}`,
      })
      .where('id', '=', job.id)
      .where('status', '=', 'queued')
      .where('attempt', '=', Number(job.attempt))
      .executeTakeFirst();
    return Number(j.numUpdatedRows) === 1;
  }

  /** Puts an assigned job back in the queue (its start could not be sent). */
  async unassign(jobId: string, message: string, now: number): Promise<void> {
    await this.db
      .updateTable('training_jobs')
      .set({
        status: 'queued',
        runner_id: null,
        assigned_at: null,
        last_seen_at: null,
        message,
        updated_at: now,
      })
      .where('id', '=', jobId)
      .where('status', '=', 'assigned')
      .execute();
  }

  /** Frees a runner when it is still reserved for `jobId`. */
  async releaseRunner(runnerId: string, jobId: string): Promise<void> {
    await this.db
      .updateTable('training_runners')
      .set({ busy_job_id: null })
      .where('id', '=', runnerId)
      .where('busy_job_id', '=', jobId)
      .execute();
  }

  /** Frees every runner not heard from since `cutoff`. */
  async releaseSilentRunners(cutoff: number): Promise<void> {
    await this.db
      .updateTable('training_runners')
      .set({ busy_job_id: null })
      .where('last_seen_at', '<', cutoff)
      .execute();
  }

  /** Records a runner's heartbeat (inserting a runner heard from the first time) and the job it says it runs. */
  async heartbeat(p: MessagePayload<'runner.heartbeat'>, now: number): Promise<void> {
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
    if (this.dialect === 'mysql')
      await this.db.insertInto('training_runners').values(values).onDuplicateKeyUpdate(update).execute();
    else
      await this.db
        .insertInto('training_runners')
        .values(values)
        .onConflict((oc) => oc.column('id').doUpdateSet(update))
        .execute();
    if (p.busyJobId !== undefined) {
      await this.db
        .updateTable('training_jobs')
        .set({ last_seen_at: now })
        .where('id', '=', p.busyJobId)
        .where('runner_id', '=', p.runnerId)
        .where('status', 'in', ACTIVE)
        .execute();
    }
  }

  /** The job a runner is reserved for, if any. */
  async reservation(runnerId: string): Promise<string | null> {
    const runner = await this.db
      .selectFrom('training_runners')
      .select('busy_job_id')
      .where('id', '=', runnerId)
      .executeTakeFirstOrThrow();
    return runner.busy_job_id;
  }
}

/** A job row as the domain's `TrainingJob`. */
export function toJob(row: JobRow): TrainingJob {
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
