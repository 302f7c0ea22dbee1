import type { CallContext } from '../core/context.js';
import type { DomainEventBase } from '../core/events.js';
import type { ModelRegistry } from '../services/models/model.registry.js';
import type { TrainingService } from '../services/training/training.service.js';
import type { RolloutService } from '../services/fleet/rollout.service.js';
import type { WaitOutcome } from './state.js';
import type { WaitSource } from './runtime.js';
import { isFinalJob } from '../services/training/model.js';
import { devicesRolledBack, isFinalRollout } from '../services/fleet/model.js';

/** Durable waits on training jobs: ends with `training.finished`, carries the registered model version and its metrics. */
export function trainingWaitSource(
  training: Pick<TrainingService, 'get'>,
  models?: Pick<ModelRegistry, 'get'>,
): WaitSource {
  return {
    kind: 'job',
    idFrom: (event: DomainEventBase) =>
      event.type === 'training.finished'
        ? (event as DomainEventBase & { job?: { id?: string } }).job?.id
        : undefined,
    async check(ctx: CallContext, id: string): Promise<WaitOutcome | undefined> {
      const job = await training.get(ctx, id);
      if (!isFinalJob(job.status)) return undefined;
      const ok = job.status === 'succeeded';
      let metrics: Record<string, number> = job.lastMetrics ?? {};
      let modelRef: string | null = null;
      if (ok && job.modelVersionId !== null && models !== undefined) {
        const version = await models.get(ctx, job.modelVersionId);
        metrics = version.metrics;
        modelRef = version.ref;
      }
      const map50 = metrics.mAP50 ?? metrics.map50;
      // attempts only grow when a runner stopped responding and the job was re-queued
      const retried =
        job.attempt > 1
          ? ` on attempt ${job.attempt} of ${job.maxAttempts} (re-queued after its runner stopped responding)`
          : '';
      return {
        kind: 'job',
        id,
        ok: ok && job.modelVersionId !== null,
        status: job.status,
        summary: ok
          ? job.modelVersionId !== null
            ? `training ${id} succeeded${retried}: ${modelRef ?? job.modelVersionId}${typeof map50 === 'number' ? ` (mAP50 ${map50.toFixed(3)})` : ''}`
            : `training ${id} finished but registered no model version`
          : `training ${id} ${job.status}${job.message ? `: ${job.message}` : ''}`,
        data: { jobId: id, modelVersionId: job.modelVersionId, modelRef, metrics },
      };
    },
  };
}

/** Durable waits on rollouts: ends with `rollout.finished`, carries devices updated of devices targeted. */
export function rolloutWaitSource(rollouts: Pick<RolloutService, 'status'>): WaitSource {
  return {
    kind: 'rollout',
    idFrom: (event: DomainEventBase) =>
      event.type === 'rollout.finished'
        ? (event as DomainEventBase & { rolloutId?: string }).rolloutId
        : undefined,
    async check(ctx: CallContext, id: string): Promise<WaitOutcome | undefined> {
      const r = await rollouts.status(ctx, id);
      if (!isFinalRollout(r.state)) return undefined;
      const devicesUpdated = r.devices.filter((d) => d.state === 'healthy').length;
      return {
        kind: 'rollout',
        id,
        ok: r.state === 'completed',
        status: r.state,
        summary: `rollout ${id} of ${r.model.ref} ${r.state.replace('_', ' ')}${r.reason ? `: ${r.reason}` : ''}`,
        data: {
          rolloutId: id,
          state: r.state,
          devicesUpdated,
          devicesRolledBack: devicesRolledBack(r),
          devicesTotal: r.devices.length,
          model: r.model.ref,
        },
      };
    },
  };
}
