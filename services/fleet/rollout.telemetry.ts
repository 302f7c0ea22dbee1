import { parseMessage, type MessagePayload } from '../../protocol/envelope.js';
import { rolloutGatesSchema } from './model.js';
import type { RolloutEngine } from './rollout.engine.js';
import { round } from './rollout.gates.js';
import type { RolloutSettings } from './rollout.options.js';
import type { RolloutRepository } from './rollout.repository.js';

/** What devices tell a rollout: `device.health` moves a deployment (healthy, failed, rolled back), `device.heartbeat` feeds its latency and confidence gates. */
export class RolloutTelemetry {
  constructor(
    private readonly o: RolloutSettings,
    private readonly repo: RolloutRepository,
    private readonly engine: RolloutEngine,
  ) {}

  /**
   * Records `device.health` and `device.heartbeat` against the deployments they concern and returns
   * the ids of the rollouts touched; invalid or unrelated messages are ignored, never thrown.
   */
  async apply(message: unknown): Promise<string[]> {
    const parsed = parseMessage(message);
    if (!parsed.ok) {
      this.o.log.warn({ error: parsed.error }, 'rollout consumer skipped an invalid message');
      return [];
    }
    const m = parsed.message;
    try {
      if (m.type === 'device.health') return await this.onHealth(m.payload);
      if (m.type === 'device.heartbeat') return await this.onHeartbeat(m.payload);
    } catch (err) {
      this.o.log.error(
        { err: (err as Error).message, type: m.type },
        'rollout consumer failed to apply a message',
      );
    }
    return [];
  }

  private async onHealth(h: MessagePayload<'device.health'>): Promise<string[]> {
    const d = await this.repo.deployment(h.deploymentId);
    if (d === undefined || d.device_id !== h.deviceId || d.rollout_id !== h.rolloutId) {
      this.o.log.debug(
        { deploymentId: h.deploymentId, deviceId: h.deviceId },
        'device.health for an unknown deployment ignored',
      );
      return [];
    }
    const r = await this.repo.byId(d.rollout_id);
    if (h.modelVersionId !== r.model_version_id && h.state !== 'rolled_back') {
      this.o.log.warn(
        { deploymentId: d.id, reported: h.modelVersionId, expected: r.model_version_id },
        'device.health names another model version; ignored',
      );
      return [];
    }
    const now = this.o.now();
    if (d.state !== 'sent') {
      if (d.state === 'rolled_back' && h.state === 'failed') {
        // The device could not return to its previous model and still serves the new one: say so in the status.
        const message = `the device could not roll back: ${h.message ?? 'no reason given'}`;
        await this.engine.updateDeployment(d, { device_state: h.state, message }, d.state);
        this.o.log.error(
          { rolloutId: d.rollout_id, deviceId: d.device_id, message },
          'device rollback failed',
        );
        await this.engine.progress(d.rollout_id, `${d.device_name}: ${message}`, d.device_id);
      } else if (d.device_state !== h.state)
        await this.engine.updateDeployment(d, { device_state: h.state }, d.state);
      return [d.rollout_id];
    }
    const gates = rolloutGatesSchema.parse(JSON.parse(r.gates));
    if (h.state === 'healthy') {
      const p95 = h.latencyP95Ms ?? null;
      if (gates.maxLatencyP95Ms !== null && p95 !== null && p95 > gates.maxLatencyP95Ms) {
        await this.engine.updateDeployment(d, { device_state: h.state, latency_p95_ms: p95 });
        await this.engine.failDeployment(
          { ...d, device_state: h.state },
          `p95 latency ${round(p95)} ms is above the ${gates.maxLatencyP95Ms} ms gate`,
        );
      } else {
        await this.engine.updateDeployment(d, {
          state: 'healthy',
          device_state: h.state,
          healthy_at: now,
          latency_p95_ms: p95,
          message: h.message ?? null,
        });
        await this.engine.progress(
          d.rollout_id,
          `${d.device_name} loaded ${r.model_ref} and is healthy${p95 === null ? '' : ` (p95 ${round(p95)} ms)`}`,
          d.device_id,
        );
      }
    } else if (h.state === 'failed' || h.state === 'rolled_back') {
      await this.engine.updateDeployment(d, { device_state: h.state });
      await this.engine.failDeployment(
        { ...d, device_state: h.state },
        `the device reported ${h.state}${h.message === undefined ? '' : `: ${h.message}`}`,
      );
    } else {
      await this.engine.updateDeployment(d, { device_state: h.state });
      await this.engine.progress(d.rollout_id, `${d.device_name}: ${h.state}`, d.device_id);
    }
    return [d.rollout_id];
  }

  private async onHeartbeat(hb: MessagePayload<'device.heartbeat'>): Promise<string[]> {
    if (hb.modelVersionId === null) return [];
    return this.repo.addHeartbeat(
      hb.deviceId,
      hb.modelVersionId,
      hb.latencyP95Ms,
      hb.meanTopConfidence,
      this.o.now,
    );
  }
}
