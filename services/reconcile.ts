import { makeEnvelope } from '../protocol/envelope.js';
import { STREAMS, type Broker, type RetentionGap } from './infra/broker/port.js';
import type { Db } from './infra/db/port.js';
import type { Logger } from '../core/log.js';

/** Most jobs and deployments one `status.request` names; more wait for the next gap or their timeouts. */
const MAX_ITEMS = 500;

/** Options of `InFlightReconciler`. */
export interface InFlightReconcilerOptions {
  db: Db;
  broker: Broker;
  log: Logger;
  /** Envelope source, e.g. `platform`. */
  source?: string;
  /** Gaps within this long of a request share it (default 5 s). */
  debounceMs?: number;
}

/**
 * After a consumer skipped telemetry that retention dropped, asks every runner and device with work
 * in flight (jobs assigned or running, deployments sent) to report its state again on
 * `vision.control` (`status.request`). Their answers arrive as ordinary telemetry, so the training
 * and rollout services apply them like any other status; heartbeat and health timeouts still cover
 * a worker that does not answer.
 */
export class InFlightReconciler {
  private timer: NodeJS.Timeout | undefined;
  private pending: RetentionGap[] = [];
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: InFlightReconcilerOptions) {}

  /** Schedules one status request for this gap (and any others that follow within the debounce). */
  onGap(gap: RetentionGap): void {
    this.pending.push(gap);
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const gaps = this.pending.splice(0);
      const reason = gaps
        .map((g) => `${g.consumer} on ${g.stream} skipped offsets ${g.expected}..${g.resumedAt - 1}`)
        .join('; ');
      this.running = this.running
        .then(() => this.requestStatus(`retention gap: ${reason}`))
        .catch((err: Error) =>
          this.o.log.warn(
            { err: err.message },
            'could not ask runners and devices for their status after a retention gap',
          ),
        );
    }, this.o.debounceMs ?? 5000);
    this.timer.unref();
  }

  /** Publishes one `status.request` naming the jobs and deployments in flight; returns how many of each. */
  async requestStatus(reason: string): Promise<{ jobs: number; deployments: number }> {
    const db = this.o.db.kysely;
    const jobs = await db
      .selectFrom('training_jobs')
      .select(['id', 'attempt', 'runner_id'])
      .where('status', 'in', ['assigned', 'running'])
      .where('runner_id', 'is not', null)
      .orderBy('id')
      .limit(MAX_ITEMS)
      .execute();
    const deployments = await db
      .selectFrom('rollout_deployments')
      .select(['id', 'rollout_id', 'device_id'])
      .where('state', '=', 'sent')
      .orderBy('id')
      .limit(MAX_ITEMS)
      .execute();
    if (jobs.length + deployments.length === 0) return { jobs: 0, deployments: 0 };
    await this.o.broker.publish(
      STREAMS.control,
      makeEnvelope(
        'status.request',
        {
          reason,
          jobs: jobs.map((j) => ({ jobId: j.id, attempt: Number(j.attempt), runnerId: j.runner_id! })),
          deployments: deployments.map((d) => ({
            deploymentId: d.id,
            rolloutId: d.rollout_id,
            deviceId: d.device_id,
          })),
        },
        { source: this.o.source ?? 'platform' },
      ),
    );
    this.o.log.info(
      { jobs: jobs.length, deployments: deployments.length, reason },
      'asked runners and devices to report the state of work in flight',
    );
    return { jobs: jobs.length, deployments: deployments.length };
  }

  /** Stops a scheduled request and waits for one being sent. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
