import {
  DEPLOYMENT_STATES,
  type DeploymentState,
  type DeviceTarget,
  type OfflinePolicy,
  type RolloutGates,
  type RolloutState,
  type RolloutStatus,
  type RolloutStrategy,
} from './model.js';
import type { DeploymentRow, RolloutRow } from './rollout.repository.js';

/** A rollout and its deployments as the domain's `RolloutStatus`; `lastSeen` holds each device's last heartbeat. */
export function toStatus(
  r: RolloutRow,
  deps: DeploymentRow[],
  lastSeen: Map<string, number>,
  isOnline: (lastHeartbeatAt: number) => boolean,
): RolloutStatus {
  return {
    id: r.id,
    projectId: r.project_id,
    model: { versionId: r.model_version_id, ref: r.model_ref, name: r.model_name },
    target: JSON.parse(r.target) as DeviceTarget,
    strategy: JSON.parse(r.strategy) as RolloutStrategy,
    gates: JSON.parse(r.gates) as RolloutGates,
    offline: JSON.parse(r.offline_policy) as OfflinePolicy,
    state: r.state,
    pausedFrom: (r.paused_from as RolloutState | null) ?? null,
    currentWave: Number(r.current_wave),
    waveCount: Number(r.wave_count),
    reason: r.reason,
    createdBy: r.created_by,
    threadId: r.thread_id,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    startedAt: r.started_at === null ? null : Number(r.started_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    counts: countStates(deps),
    devices: deps.map((d) => {
      const last = lastSeen.get(d.device_id);
      const confCount = Number(d.conf_count);
      const latCount = Number(d.latency_count);
      return {
        deploymentId: d.id,
        deviceId: d.device_id,
        name: d.device_name,
        wave: Number(d.wave),
        state: d.state,
        deviceState: d.device_state,
        message: d.message,
        online: last !== undefined && isOnline(last),
        previousModelVersionId: d.previous_model_version_id,
        baselineConfidence: d.baseline_confidence === null ? null : Number(d.baseline_confidence),
        meanConfidence: confCount > 0 ? Number(d.conf_sum) / confCount : null,
        meanLatencyP95Ms: latCount > 0 ? Number(d.latency_sum) / latCount : null,
        heartbeats: latCount,
        waitingSince: d.waiting_since === null ? null : Number(d.waiting_since),
        sentAt: d.sent_at === null ? null : Number(d.sent_at),
        healthyAt: d.healthy_at === null ? null : Number(d.healthy_at),
        verifiedAt: d.verified_at === null ? null : Number(d.verified_at),
        finishedAt: d.finished_at === null ? null : Number(d.finished_at),
      };
    }),
  };
}

/** How many deployments are in each state. */
export function countStates(deps: DeploymentRow[]): Record<DeploymentState, number> {
  const counts = Object.fromEntries(DEPLOYMENT_STATES.map((s) => [s, 0])) as Record<DeploymentState, number>;
  for (const d of deps) counts[d.state]++;
  return counts;
}
