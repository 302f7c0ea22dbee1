import { systemPrincipal, type CallContext } from '../../core/context.js';
import { makeEnvelope } from '../../protocol/envelope.js';
import { STREAMS } from '../infra/broker/port.js';
import { formatDuration } from './model.js';
import {
  isFinalRollout,
  offlinePolicySchema,
  rolloutGatesSchema,
  type DeploymentState,
  type RolloutModelVersion,
  type RolloutStatus,
} from './model.js';
import { verify } from './rollout.gates.js';
import type { RolloutSettings } from './rollout.options.js';
import type { DeploymentRow, DeviceRow, RolloutRepository, RolloutRow } from './rollout.repository.js';
import { countStates, toStatus } from './rollout.status.js';

/**
 * The rollout engine the controller drives: moves a rollout from its recorded state (gates,
 * offline policy, canary, waves), sends `deploy.apply` and `deploy.rollback`, and ends it. All state
 * is in the database, so any instance can pick a rollout up where another stopped.
 */
export class RolloutEngine {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly o: RolloutSettings,
    private readonly repo: RolloutRepository,
  ) {}

  /**
   * Moves one rollout forward from its recorded state: checks gates, rolls back on a failure,
   * applies the offline policy, sends the next devices and opens the next wave. Idempotent; calls
   * for the same rollout in this process run one after another.
   */
  advance(rolloutId: string): Promise<void> {
    return this.serial(rolloutId, () => this.advanceNow(rolloutId));
  }

  /** Runs `fn` after every earlier call for the same rollout in this process. */
  serial(rolloutId: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(rolloutId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(rolloutId, tail);
    void tail.then(() => {
      if (this.chains.get(rolloutId) === tail) this.chains.delete(rolloutId);
    });
    return next;
  }

  private async advanceNow(rolloutId: string): Promise<void> {
    let r = await this.repo.findById(rolloutId);
    if (r === undefined || isFinalRollout(r.state)) return;
    const gates = rolloutGatesSchema.parse(JSON.parse(r.gates));
    const offline = offlinePolicySchema.parse(JSON.parse(r.offline_policy));
    const now = this.o.now();
    if (r.state === 'pending') {
      if (!(await this.cas(r, { state: 'canary', started_at: now, current_wave: 0 }))) return;
      r = { ...r, state: 'canary', started_at: now, current_wave: 0 };
      await this.progress(
        rolloutId,
        `started: canary of ${await this.repo.waveSize(rolloutId, 0)} device(s)`,
      );
    }
    let deps = await this.repo.deployments(rolloutId);

    for (const d of deps) {
      if (d.state === 'sent' && d.sent_at !== null && now - Number(d.sent_at) > gates.healthTimeoutMs) {
        await this.failDeployment(
          d,
          `no healthy report within ${formatDuration(gates.healthTimeoutMs)} (last reported: ${d.device_state ?? 'nothing'})`,
        );
      } else if (d.state === 'healthy' && d.verified_at === null) {
        const verdict = verify(d, gates, now);
        if (verdict === 'wait') continue;
        if (verdict.ok) {
          await this.updateDeployment(d, { verified_at: now, message: verdict.note ?? null });
          await this.progress(
            rolloutId,
            `${d.device_name} passed the gates${verdict.note === undefined ? '' : ` (${verdict.note})`}`,
            d.device_id,
          );
        } else await this.failDeployment(d, verdict.reason);
      }
    }
    deps = await this.repo.deployments(rolloutId);
    const failed = deps.find((d) => d.state === 'failed');
    const undoing = deps.some((d) => d.state === 'rolled_back');
    if (failed !== undefined || undoing) {
      const reason =
        undoing || failed === undefined
          ? (r.reason ?? 'rolled back')
          : `gate failed on ${failed.device_name}: ${failed.message ?? 'failed'}`;
      await this.rollbackTouched(r, reason, false);
      return;
    }
    if (r.state === 'paused') return;

    for (;;) {
      const wave: number = Number(r.current_wave);
      for (const d of deps.filter((x) => x.wave === wave && x.state === 'pending')) {
        const device = await this.repo.device(d.device_id);
        if (device !== undefined && this.o.fleet.isOnline(Number(device.last_heartbeat_at))) {
          const sent = await this.send(r, d, device);
          if (!sent) return;
          continue;
        }
        if (d.waiting_since === null) {
          await this.updateDeployment(d, {
            waiting_since: now,
            device_state: 'offline',
            message: `offline; waiting up to ${formatDuration(offline.waitMs)}, then ${offline.action === 'skip' ? 'skip' : 'fail the rollout'}`,
          });
          await this.progress(
            rolloutId,
            `${d.device_name} is offline; waiting up to ${formatDuration(offline.waitMs)}`,
            d.device_id,
          );
          if (offline.waitMs > 0) continue;
        }
        const waited = now - Number(d.waiting_since ?? now);
        if (waited < offline.waitMs) continue;
        const note = `offline for ${formatDuration(waited)} (policy: wait ${formatDuration(offline.waitMs)}, then ${offline.action})`;
        if (offline.action === 'skip') {
          await this.updateDeployment(d, { state: 'skipped', message: `skipped: ${note}`, finished_at: now });
          await this.progress(rolloutId, `${d.device_name} skipped: ${note}`, d.device_id);
        } else {
          await this.finish(r, 'failed', `${d.device_name} ${note}`, {
            deploymentId: d.id,
            message: `failed: ${note}`,
          });
          return;
        }
      }
      deps = await this.repo.deployments(rolloutId);
      const current = deps.filter((x) => x.wave === wave);
      const done = current.every(
        (x) => x.state === 'skipped' || (x.state === 'healthy' && x.verified_at !== null),
      );
      if (!done) return;
      if (wave === 0 && !current.some((x) => x.state === 'healthy')) {
        // Every canary was skipped: the first online device of a later wave becomes the canary, so no wave goes out unproven.
        const promoted = await this.promoteCanary(deps);
        if (promoted !== undefined) {
          await this.progress(
            rolloutId,
            `no canary could be reached; ${promoted.device_name} becomes the canary`,
            promoted.device_id,
          );
          deps = await this.repo.deployments(rolloutId);
          continue;
        }
      }
      const next: number | undefined = deps
        .filter((x) => x.wave > wave)
        .reduce<number | undefined>(
          (min, x) => (min === undefined || x.wave < min ? x.wave : min),
          undefined,
        );
      if (next === undefined) {
        const updated = deps.filter((x) => x.state === 'healthy').length;
        await this.finish(
          r,
          'completed',
          updated === deps.length
            ? null
            : `${updated} of ${deps.length} device(s) updated; the rest were skipped`,
        );
        return;
      }
      if (!(await this.cas(r, { state: 'waves', current_wave: next }))) return;
      r = { ...r, state: 'waves', current_wave: next };
      await this.progress(
        rolloutId,
        `wave ${next} of ${r.wave_count - 1} started (${deps.filter((x) => x.wave === next).length} device(s))`,
      );
    }
  }

  private async promoteCanary(deps: DeploymentRow[]): Promise<DeploymentRow | undefined> {
    const later = deps.filter((x) => x.wave > 0 && x.state === 'pending');
    if (later.length === 0) return undefined;
    const seen = await this.repo.lastHeartbeats(later.map((x) => x.device_id));
    const online = new Set([...seen].filter(([, at]) => this.o.fleet.isOnline(at)).map(([id]) => id));
    const pick = later.find((x) => online.has(x.device_id));
    if (pick === undefined) return undefined;
    return (await this.updateDeployment(pick, { wave: 0 })) ? pick : undefined;
  }

  private async send(r: RolloutRow, d: DeploymentRow, device: DeviceRow): Promise<boolean> {
    const ctx = this.systemContext(r.project_id);
    let mv: RolloutModelVersion;
    let url: string;
    try {
      mv = await this.o.models.get(ctx, r.model_version_id);
      url = await this.o.storage.presignGet(mv.model.key, this.o.urlTtlSeconds);
    } catch (err) {
      await this.finish(r, 'failed', `cannot prepare ${r.model_ref} for devices: ${(err as Error).message}`);
      return false;
    }
    const switching = device.model_version_id !== r.model_version_id;
    await this.o.broker.publish(
      STREAMS.control,
      makeEnvelope(
        'deploy.apply',
        {
          deploymentId: d.id,
          rolloutId: r.id,
          deviceId: d.device_id,
          model: {
            versionId: mv.id,
            name: mv.name,
            version: mv.version,
            url,
            sha256: mv.model.sha256,
            size: mv.model.size,
            layout: mv.model.layout,
            inputSize: mv.model.inputSize,
            classNames: mv.classNames,
          },
        },
        { source: this.o.source, target: d.device_id, id: `deploy-${d.id}` },
      ),
    );
    const now = this.o.now();
    await this.updateDeployment(d, {
      state: 'sent',
      sent_at: now,
      device_state: 'sent',
      message: null,
      waiting_since: null,
      previous_model_version_id: switching ? device.model_version_id : d.previous_model_version_id,
      baseline_confidence:
        switching && device.mean_top_confidence !== null ? Number(device.mean_top_confidence) : null,
    });
    this.o.log.info(
      { rolloutId: r.id, deploymentId: d.id, deviceId: d.device_id, model: r.model_ref },
      'deploy.apply sent',
    );
    await this.progress(
      r.id,
      `${r.model_ref} sent to ${d.device_name}${d.wave === 0 ? ' (canary)' : ` (wave ${d.wave})`}`,
      d.device_id,
    );
    return true;
  }

  /** Fails a deployment's gate (when it is still in the state read) and says so. */
  async failDeployment(d: DeploymentRow, message: string): Promise<void> {
    const ok = await this.updateDeployment(
      d,
      { state: 'failed', message, finished_at: this.o.now() },
      d.state,
    );
    if (ok) {
      this.o.log.warn({ rolloutId: d.rollout_id, deviceId: d.device_id, message }, 'rollout gate failed');
      await this.progress(d.rollout_id, `${d.device_name} failed a gate: ${message}`, d.device_id);
    }
  }

  /**
   * Sends `deploy.rollback` to every touched device and marks it, skips the devices never reached,
   * then ends the rollout as `rolled_back`. Each device is published before it is marked, so a crash
   * midway resumes with the devices left (the next `advance` sees the rollback under way).
   */
  async rollbackTouched(r: RolloutRow, reason: string, finished: boolean): Promise<void> {
    const now = this.o.now();
    if (r.reason !== reason) {
      await this.repo.set(r.id, { reason }, now);
    }
    const deps = await this.repo.deployments(r.id);
    const touched = finished
      ? deps.filter((d) => d.state === 'healthy' || d.state === 'sent')
      : deps.filter(
          (d) => d.sent_at !== null && (d.state === 'sent' || d.state === 'healthy' || d.state === 'failed'),
        );
    for (const d of touched) {
      await this.o.broker.publish(
        STREAMS.control,
        makeEnvelope(
          'deploy.rollback',
          { deploymentId: d.id, rolloutId: r.id, deviceId: d.device_id, reason },
          { source: this.o.source, target: d.device_id, id: `rollback-${d.id}` },
        ),
      );
      const failedBefore = d.state === 'failed' ? `${d.message ?? 'failed'}; ` : '';
      await this.updateDeployment(
        d,
        { state: 'rolled_back', message: `${failedBefore}rolled back: ${reason}`, finished_at: now },
        d.state,
      );
      this.o.log.info({ rolloutId: r.id, deviceId: d.device_id }, 'deploy.rollback sent');
    }
    if (finished) {
      await this.repo.set(r.id, { state: 'rolled_back', reason }, now);
      const status = await this.status({ ...r, state: 'rolled_back', reason });
      this.o.events.emit({
        type: 'rollout.finished',
        projectId: r.project_id,
        at: now,
        rolloutId: r.id,
        state: 'rolled_back',
        reason,
        rollout: status,
      });
      return;
    }
    await this.finish(r, 'rolled_back', reason);
  }

  private async finish(
    r: RolloutRow,
    state: 'completed' | 'rolled_back' | 'failed',
    reason: string | null,
    failDeployment?: { deploymentId: string; message: string },
  ): Promise<void> {
    const now = this.o.now();
    const done = await this.o.db.transaction((trx) =>
      this.repo.in(trx).finish(r.id, state, reason, now, failDeployment),
    );
    if (!done) return;
    this.o.log.info({ rolloutId: r.id, state, reason }, 'rollout finished');
    const status = await this.status({ ...r, state, reason, finished_at: now });
    this.o.events.emit({
      type: 'rollout.finished',
      projectId: r.project_id,
      at: now,
      rolloutId: r.id,
      state,
      reason,
      rollout: status,
    });
  }

  /** Emits `rollout.progress` with the rollout's current counts. */
  async progress(rolloutId: string, message: string, deviceId?: string): Promise<void> {
    const r = await this.repo.byId(rolloutId);
    const counts = countStates(await this.repo.deployments(rolloutId));
    this.o.events.emit({
      type: 'rollout.progress',
      projectId: r.project_id,
      at: this.o.now(),
      rolloutId,
      state: r.state,
      currentWave: Number(r.current_wave),
      waveCount: Number(r.wave_count),
      counts,
      message,
      ...(deviceId === undefined ? {} : { deviceId }),
    });
  }

  /** The platform acting in a project (the controller's calls). */
  systemContext(projectId: string): CallContext {
    return { user: systemPrincipal(), projectId, requestId: 'rollout-controller', log: this.o.log };
  }

  /** Updates a deployment still in state `expected` (by default the state read); false when it moved on. */
  updateDeployment(
    d: DeploymentRow,
    set: Partial<Omit<DeploymentRow, 'id'>>,
    expected: DeploymentState = d.state,
  ): Promise<boolean> {
    return this.repo.updateDeployment(d, set, expected, this.o.now());
  }

  /** A rollout row as the domain's status, with its devices' online state. */
  async status(r: RolloutRow): Promise<RolloutStatus> {
    const deps = await this.repo.deployments(r.id);
    const lastSeen = await this.repo.lastHeartbeats(deps.map((d) => d.device_id));
    return toStatus(r, deps, lastSeen, (at) => this.o.fleet.isOnline(at));
  }

  private cas(r: RolloutRow, set: Partial<Omit<RolloutRow, 'id'>>): Promise<boolean> {
    return this.repo.cas(r, set, this.o.now());
  }
}
