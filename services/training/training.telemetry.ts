import { parseMessage, type MessagePayload, type TrainConfig } from '../../protocol/envelope.js';
import { STREAMS, type Subscription } from '../infra/broker/port.js';
import { retryTransient } from '../infra/db/retry.js';
import { isFinalJob, type TrainingJob } from './model.js';
import type { TrainingDispatcher } from './training.dispatcher.js';
import type { TrainingSettings } from './training.options.js';
import { ACTIVE, toJob, type JobRow, type TrainingRepository } from './training.repository.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import { indexJob, logLineDocs, logPartKey } from './training.search.js';

/**
 * What runners tell the platform: the `vision.telemetry` consumer (heartbeats, status, logs,
 * metrics and artifacts of the current attempt only) and the heartbeat timeout check that fails or
 * re-queues the jobs of silent runners.
 */
export class TrainingTelemetry {
  constructor(
    private readonly o: TrainingSettings,
    private readonly repo: TrainingRepository,
    private readonly jobs: TrainingDispatcher,
  ) {}

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
    const changed: TrainingJob[] = [];
    for (const job of await this.repo.silentJobs(cutoff)) {
      const fresh =
        Number(job.attempt) < Number(job.max_attempts)
          ? await this.requeueSilent(job, now)
          : await this.failSilent(job, now);
      if (fresh !== undefined) changed.push(fresh);
    }
    await this.repo.releaseSilentRunners(cutoff);
    if (changed.length > 0) await this.jobs.dispatch();
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

  private async requeueSilent(job: JobRow, now: number): Promise<TrainingJob | undefined> {
    const attempt = Number(job.attempt);
    const runner = job.runner_id ?? 'the runner';
    const message = `runner ${runner} stopped responding; re-queued (attempt ${attempt + 1} of ${Number(job.max_attempts)})`;
    const ok = await this.o.db.transaction(async (trx) => {
      const repo = this.repo.in(trx);
      if (!(await repo.requeue(job, message, now))) return false;
      if (job.runner_id !== null) await repo.releaseRunner(job.runner_id, job.id);
      await indexJob(trx, await repo.byId(job.id));
      return true;
    });
    if (!ok) return undefined;
    // Should the silent runner still be alive behind a partition, it must stop: the job moves on without it.
    if (job.runner_id !== null)
      await this.jobs
        .publish(
          'train.cancel',
          { jobId: job.id, attempt, reason: 'heartbeat timeout; the job was re-queued' },
          job.runner_id,
        )
        .catch(() => undefined);
    const fresh = toJob(await this.repo.byId(job.id));
    this.o.log.warn({ jobId: job.id, runner }, message);
    this.jobs.emit({ type: 'training.status', projectId: job.project_id, at: now, job: fresh, message });
    return fresh;
  }

  private async failSilent(job: JobRow, now: number): Promise<TrainingJob | undefined> {
    const attempt = Number(job.attempt);
    const runner = job.runner_id ?? 'the runner';
    const restart =
      job.runner_id === null
        ? 'a GPU runner is running'
        : `runner ${job.runner_id} is running again (visioninapp gpu-runner --id ${job.runner_id})`;
    const message = `runner ${runner} stopped responding for ${Math.round(this.o.heartbeatTimeoutMs / 1000)} s; the job failed after ${attempt} attempt${attempt === 1 ? '' : 's'}. Check that ${restart}, then start the training again${Number(job.max_attempts) === 1 ? ' (set JOB_MAX_ATTEMPTS above 1 to re-queue such jobs automatically)' : ''}`;
    if (!(await this.jobs.finish(job, 'failed', message, now))) return undefined;
    if (job.runner_id !== null)
      await this.jobs
        .publish('train.cancel', { jobId: job.id, attempt, reason: 'heartbeat timeout' }, job.runner_id)
        .catch(() => undefined);
    return toJob(await this.repo.byId(job.id));
  }

  private async onHeartbeat(p: MessagePayload<'runner.heartbeat'>): Promise<void> {
    const now = this.o.now();
    await this.repo.heartbeat(p, now);
    const reserved = await this.repo.reservation(p.runnerId);
    if (reserved !== null && reserved !== p.busyJobId) {
      // Keep the reservation while the job still belongs to this runner (train.start may be in flight).
      const job = await this.repo.findById(reserved);
      if (job === undefined || !ACTIVE.includes(job.status) || job.runner_id !== p.runnerId) {
        await this.repo.releaseRunner(p.runnerId, reserved);
      } else if (job.status === 'assigned') {
        await this.jobs.resendStart(reserved, p.runnerId, now);
      }
    }
    await this.jobs.dispatch();
  }

  private async onStatus(p: MessagePayload<'train.status'>): Promise<void> {
    const job = await this.current(p.jobId, p.attempt);
    if (job === undefined) return;
    if (job.runner_id !== p.runnerId) {
      this.o.log.warn(
        { jobId: p.jobId, runner: p.runnerId, owner: job.runner_id },
        'a runner that does not own the job reported on it; telling it to stop',
      );
      await this.jobs.publish(
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
        await this.repo.touch(
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
          const repo = this.repo.in(trx);
          const moved = await repo.markRunning(
            job.id,
            p.attempt,
            p.message ?? `running on ${p.runnerId}`,
            now,
          );
          if (moved) await indexJob(trx, await repo.byId(job.id));
          return moved;
        });
        if (res) {
          const fresh = toJob(await this.repo.byId(job.id));
          this.jobs.emit({
            type: 'training.status',
            projectId: job.project_id,
            at: now,
            job: fresh,
            message: fresh.message ?? 'running',
          });
        } else await this.repo.touch(job.id, now);
        return;
      }
      case 'failed':
      case 'cancelled':
        await this.jobs.finish(job, p.status, p.message ?? `${p.status} on ${p.runnerId}`, now);
        return;
    }
  }

  private async onLog(p: MessagePayload<'train.log'>): Promise<void> {
    const job = await this.current(p.jobId, p.attempt);
    if (job === undefined || p.seq <= Number(job.log_seq)) return;
    const key = logPartKey(p.jobId, p.attempt, p.seq);
    await this.o.storage.put(key, Buffer.from(p.lines.map((l) => `${l}\n`).join(''), 'utf8'), {
      contentType: 'text/plain',
    });
    const tail = [...(JSON.parse(job.log_tail) as string[]), ...p.lines].slice(-this.o.logTailLines);
    const now = this.o.now();
    // the lines become searchable (search_training_logs) through the outbox, in the transaction that stores the tail
    const docs = logLineDocs(
      { id: p.jobId, projectId: job.project_id, name: job.name },
      p.attempt,
      p.seq,
      p.lines,
      now,
    );
    const appended = await this.o.db.transaction(async (trx) => {
      const won = await this.repo.in(trx).appendLog(job, p.attempt, p.seq, tail, now);
      if (won && docs.length > 0)
        await enqueueIndex(
          trx,
          docs.map((doc) => ({ op: 'upsert' as const, doc })),
        );
      return won;
    });
    if (appended)
      this.jobs.emit({
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
      await this.repo.touch(job.id, now);
      this.jobs.emit(event);
      return;
    }
    const inserted = await this.o.db.transaction((trx) => this.repo.in(trx).addEpoch(job, p, now));
    if (inserted) this.jobs.emit(event);
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
      await this.jobs.finish(job, 'failed', `artifacts refused: ${problem}`, this.o.now());
      return;
    }
    const now = this.o.now();
    const result = await this.o.db.transaction(async (trx) => {
      const repo = this.repo.in(trx);
      if (!(await repo.succeed(p.jobId, p.attempt, now))) return undefined;
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
      await repo.setModelVersion(p.jobId, version.id, `succeeded: ${version.ref}`);
      await repo.releaseRunner(p.runnerId, p.jobId);
      await indexJob(trx, await repo.byId(p.jobId));
      return version;
    });
    if (result === undefined) return;
    this.o.models.emitRegistered(result);
    const fresh = toJob(await this.repo.byId(p.jobId));
    this.o.log.info({ jobId: p.jobId, model: result.ref }, 'training succeeded');
    this.jobs.emit({
      type: 'training.finished',
      projectId: job.project_id,
      at: now,
      job: fresh,
      status: 'succeeded',
      modelRef: result.ref,
    });
    await this.jobs.dispatch();
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

  /** The job a message is about, when the message is for its current attempt and the job is not finished. */
  private async current(jobId: string, attempt: number): Promise<JobRow | undefined> {
    const job = await this.repo.findById(jobId);
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
}
