import type { Selectable } from 'kysely';
import { roleAtLeast, systemPrincipal, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventBus } from '../../core/events.js';
import { priorEffect, recordEffect } from '../effects.js';
import { newId } from '../../core/ids.js';
import { makeEnvelope, parseMessage, type MessagePayload } from '../../protocol/envelope.js';
import { STREAMS, type Broker } from '../infra/broker/port.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { Storage } from '../infra/storage/port.js';
import type { Logger } from '../../core/log.js';
import type { FleetEvent } from './events.js';
import { formatDuration, type FleetService } from './fleet.service.js';
import { type DeviceTarget } from './model.js';
import { assignWaves, describeTarget } from './rollout.plan.js';
import {
  offlinePolicySchema,
  rolloutGatesSchema,
  rolloutInputSchema,
  rolloutStrategySchema,
  type OfflinePolicy,
  type RolloutGates,
  type RolloutInput,
  type RolloutStrategy,
} from './model.js';
import {
  DEPLOYMENT_STATES,
  type RolloutState,
  type DeploymentState,
  type RolloutModelVersion,
  type RolloutModels,
  type RolloutPlan,
  type RolloutStatus,
} from './model.js';
import { isFinalRollout } from './model.js';

/** The idempotent-effect kind of a created rollout. */
const ROLLOUT_EFFECT = 'fleet.rollout';
const ACTIVE: RolloutState[] = ['pending', 'canary', 'waves', 'paused'];

/** Dependencies and settings of the rollout service. */
export interface RolloutServiceOptions {
  db: Db;
  broker: Broker;
  storage: Storage;
  models: RolloutModels;
  fleet: FleetService;
  events: EventBus<FleetEvent>;
  log: Logger;
  /** Lifetime of the signed model URL in `deploy.apply` (default 1 h). */
  urlTtlSeconds?: number;
  /** `source` of the envelopes the platform publishes. */
  source?: string;
  /** Gates of a rollout that names none (ROLLOUT_* config); each field falls back to the schema default. */
  defaultGates?: Partial<RolloutGates>;
  now?: () => number;
}

type RolloutRow = Selectable<Database['rollouts']>;
type DeploymentRow = Selectable<Database['rollout_deployments']>;

/**
 * Staged model rollouts to device groups: the dry-run plan, creation, pause/resume/rollback, status,
 * and the engine the controller drives (`advance`, `applyTelemetry`). All state is in the database,
 * so any instance can pick a rollout up where another stopped.
 */
export class RolloutService {
  private readonly o: Required<Omit<RolloutServiceOptions, 'now'>> & { now: () => number };
  private readonly chains = new Map<string, Promise<void>>();

  constructor(opts: RolloutServiceOptions) {
    this.o = {
      urlTtlSeconds: 3600,
      source: 'platform',
      defaultGates: {},
      now: Date.now,
      ...opts,
    } as RolloutService['o'];
  }

  /** The dry run: which devices, in which waves, which gates; nothing is stored or sent. */
  async plan(ctx: CallContext, input: RolloutInput): Promise<RolloutPlan> {
    const parsed = rolloutInputSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `rollout request is invalid: ${describeZodError(parsed.error)}`,
      );
    const p = parsed.data;
    const strategy = rolloutStrategySchema.parse(p.strategy ?? {});
    // the raw request, not `p.gates`: parsing fills every missing gate with the schema default, which would hide the configured ones
    const gates = rolloutGatesSchema.parse({ ...this.o.defaultGates, ...input.gates });
    const offline = offlinePolicySchema.parse(p.offline ?? {});
    const mv = await this.o.models.get(ctx, p.model);
    const devices = await this.o.fleet.resolveTarget(ctx, p.target);
    const { devices: planned, waves } = assignWaves(devices, strategy, mv.id);
    const warnings: string[] = [];
    const deploying = planned.filter((d) => d.action === 'deploy');
    if (deploying.length === 0)
      warnings.push(
        `every device of ${describeTarget(p.target)} already runs ${mv.ref}; nothing to roll out`,
      );
    const offlineNow = deploying.filter((d) => !d.online);
    if (offlineNow.length > 0)
      warnings.push(
        `${offlineNow.length} device(s) offline now (${offlineNow.map((d) => d.name).join(', ')}): they will be waited for up to ${formatDuration(offline.waitMs)}, then ${offline.action === 'skip' ? 'skipped' : 'the rollout fails'}`,
      );
    if (
      waves[0] !== undefined &&
      waves[0].deviceIds.length > 0 &&
      deploying.filter((d) => d.wave === 0).every((d) => !d.online)
    )
      warnings.push('no online device is available as canary');
    const summary = [
      `roll out ${mv.ref} (sha256 ${mv.model.sha256.slice(0, 12)}…) to ${describeTarget(p.target)}: ${deploying.length} device(s) to update${planned.length > deploying.length ? `, ${planned.length - deploying.length} already on it` : ''}`,
      ...waves
        .filter((w) => w.deviceIds.length > 0)
        .map(
          (w) =>
            `${w.label}: ${w.deviceIds.map((id) => planned.find((d) => d.deviceId === id)?.name ?? id).join(', ')} (${w.cumulativePercent}% of the group)`,
        ),
      `gates: loaded and healthy within ${formatDuration(gates.healthTimeoutMs)}${gates.maxLatencyP95Ms === null ? '' : `; p95 latency ≤ ${gates.maxLatencyP95Ms} ms`}${gates.confidenceMargin === null ? '' : `; mean top confidence at most ${gates.confidenceMargin} below the previous model`} (over ${gates.minHeartbeats} heartbeat(s) or ${formatDuration(gates.observeMs)})`,
      `a failed gate rolls back every device already touched; devices not yet reached are never sent anything`,
    ];
    return {
      model: { versionId: mv.id, ref: mv.ref, sha256: mv.model.sha256, size: mv.model.size },
      target: p.target,
      strategy,
      gates,
      offline,
      waves: waves.filter((w) => w.deviceIds.length > 0),
      devices: planned,
      summary,
      warnings,
    };
  }

  /** Creates the rollout (state `pending`); the controller sends the canary on its next tick. Approval is the tools layer's job. */
  async start(ctx: CallContext, input: RolloutInput): Promise<RolloutStatus> {
    this.requireOperator(ctx, 'start a rollout');
    // a retried step (same idempotency key) gets the rollout it created the first time
    const earlier = await priorEffect<{ rolloutId: string }>(this.o.db.kysely, ctx, ROLLOUT_EFFECT);
    if (earlier !== undefined) return this.status(ctx, earlier.rolloutId);
    const plan = await this.plan(ctx, input);
    const deploying = plan.devices.filter((d) => d.action === 'deploy');
    if (deploying.length === 0)
      throw new PlatformError('conflict', plan.warnings[0] ?? 'nothing to roll out');
    const mv = await this.o.models.get(ctx, plan.model.versionId);
    const now = this.o.now();
    const id = newId('ro');
    const waveCount = plan.waves.length;
    const threadId = rolloutInputSchema.parse(input).threadId ?? ctx.threadId ?? null;
    await this.o.db.transaction(async (trx) => {
      // Checked inside the transaction (locking the active rows on MySQL) so two starts never share a device.
      let active = trx.selectFrom('rollouts').select('id').where('state', 'in', ACTIVE);
      if (this.o.db.dialect === 'mysql') active = active.forUpdate();
      const activeIds = (await active.execute()).map((a) => a.id);
      const busy =
        activeIds.length === 0
          ? []
          : await trx
              .selectFrom('rollout_deployments')
              .select(['device_id', 'rollout_id'])
              .where('rollout_id', 'in', activeIds)
              .where(
                'device_id',
                'in',
                deploying.map((d) => d.deviceId),
              )
              .execute();
      if (busy.length > 0)
        throw new PlatformError(
          'conflict',
          `device(s) ${[...new Set(busy.map((b) => b.device_id))].join(', ')} are in active rollout ${busy[0]!.rollout_id}; wait for it, or roll it back first`,
        );
      await trx
        .insertInto('rollouts')
        .values({
          id,
          project_id: ctx.projectId,
          model_version_id: mv.id,
          model_ref: mv.ref,
          model_name: mv.name,
          target: JSON.stringify(plan.target),
          strategy: JSON.stringify(plan.strategy),
          gates: JSON.stringify(plan.gates),
          offline_policy: JSON.stringify(plan.offline),
          state: 'pending',
          paused_from: null,
          current_wave: 0,
          wave_count: waveCount,
          reason: null,
          created_by: ctx.user.userId,
          thread_id: threadId,
          created_at: now,
          updated_at: now,
          started_at: null,
          finished_at: null,
        })
        .execute();
      await recordEffect(trx, ctx, ROLLOUT_EFFECT, { rolloutId: id }, now);
      await trx
        .insertInto('rollout_deployments')
        .values(
          deploying.map((d, position) => ({
            id: newId('dep'),
            rollout_id: id,
            project_id: ctx.projectId,
            device_id: d.deviceId,
            device_name: d.name,
            wave: d.wave,
            position,
            state: 'pending' as const,
            device_state: null,
            message: null,
            previous_model_version_id: d.currentModelVersionId,
            baseline_confidence: null,
            latency_p95_ms: null,
            conf_sum: 0,
            conf_count: 0,
            latency_sum: 0,
            latency_count: 0,
            waiting_since: null,
            sent_at: null,
            healthy_at: null,
            verified_at: null,
            finished_at: null,
            updated_at: now,
          })),
        )
        .execute();
    });
    ctx.log.info(
      { rolloutId: id, model: mv.ref, devices: deploying.length, waves: waveCount },
      'rollout created',
    );
    const status = await this.status(ctx, id);
    this.o.events.emit({ type: 'rollout.started', projectId: ctx.projectId, at: now, rollout: status });
    return status;
  }

  /** Stops sending new waves; devices already sent keep being watched and a failed gate still rolls back. */
  async pause(ctx: CallContext, rolloutId: string, reason = 'paused by a person'): Promise<RolloutStatus> {
    this.requireOperator(ctx, 'pause a rollout');
    const r = await this.row(ctx.projectId, rolloutId);
    if (r.state === 'paused') return this.status(ctx, rolloutId);
    if (isFinalRollout(r.state))
      throw new PlatformError('conflict', `rollout ${rolloutId} already ${r.state}; nothing to pause`);
    const ok = await this.cas(r, {
      state: 'paused',
      paused_from: r.state,
      reason: `${reason} (${ctx.user.name || ctx.user.userId})`,
    });
    if (!ok) return this.pause(ctx, rolloutId, reason);
    await this.progress(rolloutId, `paused: ${reason}`);
    return this.status(ctx, rolloutId);
  }

  /** Continues a paused rollout from the state it paused in. */
  async resume(ctx: CallContext, rolloutId: string): Promise<RolloutStatus> {
    this.requireOperator(ctx, 'resume a rollout');
    const r = await this.row(ctx.projectId, rolloutId);
    if (r.state !== 'paused')
      throw new PlatformError(
        'conflict',
        `rollout ${rolloutId} is ${r.state}, not paused; only a paused rollout can resume`,
      );
    const back = (r.paused_from ?? 'pending') as RolloutState;
    const ok = await this.cas(r, { state: back, paused_from: null, reason: null });
    if (!ok) return this.resume(ctx, rolloutId);
    await this.progress(rolloutId, `resumed (${back})`);
    return this.status(ctx, rolloutId);
  }

  /** Rolls back every device the rollout touched (`deploy.rollback` to each); devices not reached are never sent anything. */
  async rollback(ctx: CallContext, rolloutId: string, reason: string): Promise<RolloutStatus> {
    this.requireOperator(ctx, 'roll back a rollout');
    const why =
      typeof reason === 'string' && reason.trim() !== ''
        ? reason.trim().slice(0, 1000)
        : 'rolled back by a person';
    const by = `${why} (${ctx.user.name || ctx.user.userId})`;
    await this.row(ctx.projectId, rolloutId);
    await this.serial(rolloutId, async () => {
      // Read again inside the queue: an advance that ran first may have finished the rollout.
      const r = await this.row(ctx.projectId, rolloutId);
      if (r.state === 'rolled_back') return;
      // A completed or failed rollout can still be undone: its devices run the new model.
      await this.rollbackTouched(r, by, isFinalRollout(r.state));
    });
    return this.status(ctx, rolloutId);
  }

  /** A rollout of the caller's project with per-device progress. */
  async status(ctx: CallContext, rolloutId: string): Promise<RolloutStatus> {
    return this.toStatus(await this.row(ctx.projectId, rolloutId));
  }

  /** Rollouts of the caller's project, newest first (without per-device rows unless `withDevices`). */
  async list(
    ctx: CallContext,
    filter: { state?: RolloutState; offset?: number; limit?: number } = {},
  ): Promise<RolloutStatus[]> {
    let q = this.o.db.kysely.selectFrom('rollouts').selectAll().where('project_id', '=', ctx.projectId);
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(Math.max(filter.limit ?? 20, 1), 200))
      .offset(Math.max(filter.offset ?? 0, 0))
      .execute();
    return Promise.all(rows.map((r) => this.toStatus(r)));
  }

  /** Ids of rollouts not yet finished, oldest first (across projects); the controller advances each. */
  async activeRolloutIds(): Promise<string[]> {
    const rows = await this.o.db.kysely
      .selectFrom('rollouts')
      .select('id')
      .where('state', 'in', ACTIVE)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Records `device.health` and `device.heartbeat` against the deployments they concern and returns
   * the ids of the rollouts touched; invalid or unrelated messages are ignored, never thrown.
   */
  async applyTelemetry(message: unknown): Promise<string[]> {
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

  /**
   * Moves one rollout forward from its recorded state: checks gates, rolls back on a failure,
   * applies the offline policy, sends the next devices and opens the next wave. Idempotent; calls
   * for the same rollout in this process run one after another.
   */
  advance(rolloutId: string): Promise<void> {
    return this.serial(rolloutId, () => this.advanceNow(rolloutId));
  }

  private serial(rolloutId: string, fn: () => Promise<void>): Promise<void> {
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
    let r = await this.o.db.kysely
      .selectFrom('rollouts')
      .selectAll()
      .where('id', '=', rolloutId)
      .executeTakeFirst();
    if (r === undefined || isFinalRollout(r.state)) return;
    const gates = rolloutGatesSchema.parse(JSON.parse(r.gates));
    const offline = offlinePolicySchema.parse(JSON.parse(r.offline_policy));
    const now = this.o.now();
    if (r.state === 'pending') {
      if (!(await this.cas(r, { state: 'canary', started_at: now, current_wave: 0 }))) return;
      r = { ...r, state: 'canary', started_at: now, current_wave: 0 };
      await this.progress(rolloutId, `started: canary of ${await this.waveSize(rolloutId, 0)} device(s)`);
    }
    let deps = await this.deployments(rolloutId);

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
    deps = await this.deployments(rolloutId);
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
        const device = await this.o.db.kysely
          .selectFrom('devices')
          .selectAll()
          .where('id', '=', d.device_id)
          .executeTakeFirst();
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
      deps = await this.deployments(rolloutId);
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
          deps = await this.deployments(rolloutId);
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
    const seen = await this.o.db.kysely
      .selectFrom('devices')
      .select(['id', 'last_heartbeat_at'])
      .where(
        'id',
        'in',
        later.map((x) => x.device_id),
      )
      .execute();
    const online = new Set(
      seen.filter((s) => this.o.fleet.isOnline(Number(s.last_heartbeat_at))).map((s) => s.id),
    );
    const pick = later.find((x) => online.has(x.device_id));
    if (pick === undefined) return undefined;
    return (await this.updateDeployment(pick, { wave: 0 })) ? pick : undefined;
  }

  private async send(
    r: RolloutRow,
    d: DeploymentRow,
    device: Selectable<Database['devices']>,
  ): Promise<boolean> {
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

  private async onHealth(h: MessagePayload<'device.health'>): Promise<string[]> {
    const d = await this.o.db.kysely
      .selectFrom('rollout_deployments')
      .selectAll()
      .where('id', '=', h.deploymentId)
      .executeTakeFirst();
    if (d === undefined || d.device_id !== h.deviceId || d.rollout_id !== h.rolloutId) {
      this.o.log.debug(
        { deploymentId: h.deploymentId, deviceId: h.deviceId },
        'device.health for an unknown deployment ignored',
      );
      return [];
    }
    const r = await this.o.db.kysely
      .selectFrom('rollouts')
      .selectAll()
      .where('id', '=', d.rollout_id)
      .executeTakeFirstOrThrow();
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
        await this.updateDeployment(d, { device_state: h.state, message }, d.state);
        this.o.log.error(
          { rolloutId: d.rollout_id, deviceId: d.device_id, message },
          'device rollback failed',
        );
        await this.progress(d.rollout_id, `${d.device_name}: ${message}`, d.device_id);
      } else if (d.device_state !== h.state)
        await this.updateDeployment(d, { device_state: h.state }, d.state);
      return [d.rollout_id];
    }
    const gates = rolloutGatesSchema.parse(JSON.parse(r.gates));
    if (h.state === 'healthy') {
      const p95 = h.latencyP95Ms ?? null;
      if (gates.maxLatencyP95Ms !== null && p95 !== null && p95 > gates.maxLatencyP95Ms) {
        await this.updateDeployment(d, { device_state: h.state, latency_p95_ms: p95 });
        await this.failDeployment(
          { ...d, device_state: h.state },
          `p95 latency ${round(p95)} ms is above the ${gates.maxLatencyP95Ms} ms gate`,
        );
      } else {
        await this.updateDeployment(d, {
          state: 'healthy',
          device_state: h.state,
          healthy_at: now,
          latency_p95_ms: p95,
          message: h.message ?? null,
        });
        await this.progress(
          d.rollout_id,
          `${d.device_name} loaded ${r.model_ref} and is healthy${p95 === null ? '' : ` (p95 ${round(p95)} ms)`}`,
          d.device_id,
        );
      }
    } else if (h.state === 'failed' || h.state === 'rolled_back') {
      await this.updateDeployment(d, { device_state: h.state });
      await this.failDeployment(
        { ...d, device_state: h.state },
        `the device reported ${h.state}${h.message === undefined ? '' : `: ${h.message}`}`,
      );
    } else {
      await this.updateDeployment(d, { device_state: h.state });
      await this.progress(d.rollout_id, `${d.device_name}: ${h.state}`, d.device_id);
    }
    return [d.rollout_id];
  }

  private async onHeartbeat(hb: MessagePayload<'device.heartbeat'>): Promise<string[]> {
    if (hb.modelVersionId === null) return [];
    const rows = await this.o.db.kysely
      .selectFrom('rollout_deployments as d')
      .innerJoin('rollouts as r', 'r.id', 'd.rollout_id')
      .select(['d.id', 'd.rollout_id'])
      .where('d.device_id', '=', hb.deviceId)
      .where('d.state', '=', 'healthy')
      .where('d.verified_at', 'is', null)
      .where('r.state', 'in', ACTIVE)
      .where('r.model_version_id', '=', hb.modelVersionId)
      .execute();
    const conf = hb.meanTopConfidence;
    for (const row of rows) {
      await this.o.db.kysely
        .updateTable('rollout_deployments')
        .set((eb) => ({
          latency_sum: eb('latency_sum', '+', hb.latencyP95Ms),
          latency_count: eb('latency_count', '+', 1),
          ...(conf === null
            ? {}
            : { conf_sum: eb('conf_sum', '+', conf), conf_count: eb('conf_count', '+', 1) }),
          updated_at: this.o.now(),
        }))
        .where('id', '=', row.id)
        .where('state', '=', 'healthy')
        .execute();
    }
    return [...new Set(rows.map((r) => r.rollout_id))];
  }

  private async failDeployment(d: DeploymentRow, message: string): Promise<void> {
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
  private async rollbackTouched(r: RolloutRow, reason: string, finished: boolean): Promise<void> {
    const now = this.o.now();
    if (r.reason !== reason) {
      await this.o.db.kysely
        .updateTable('rollouts')
        .set({ reason, updated_at: now })
        .where('id', '=', r.id)
        .execute();
    }
    const deps = await this.deployments(r.id);
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
      await this.o.db.kysely
        .updateTable('rollouts')
        .set({ state: 'rolled_back', reason, updated_at: now })
        .where('id', '=', r.id)
        .execute();
      const status = await this.toStatus({ ...r, state: 'rolled_back', reason });
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
    const done = await this.o.db.transaction(async (trx) => {
      const res = await trx
        .updateTable('rollouts')
        .set({ state, reason, finished_at: now, updated_at: now, paused_from: null })
        .where('id', '=', r.id)
        .where('state', 'in', ACTIVE)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      if (failDeployment !== undefined)
        await trx
          .updateTable('rollout_deployments')
          .set({ state: 'failed', message: failDeployment.message, finished_at: now, updated_at: now })
          .where('id', '=', failDeployment.deploymentId)
          .execute();
      await trx
        .updateTable('rollout_deployments')
        .set({
          state: 'skipped',
          message: `not sent: rollout ${state.replace('_', ' ')}`,
          finished_at: now,
          updated_at: now,
        })
        .where('rollout_id', '=', r.id)
        .where('state', '=', 'pending')
        .execute();
      return true;
    });
    if (!done) return;
    this.o.log.info({ rolloutId: r.id, state, reason }, 'rollout finished');
    const status = await this.toStatus({ ...r, state, reason, finished_at: now });
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

  private async cas(r: RolloutRow, set: Partial<Omit<RolloutRow, 'id'>>): Promise<boolean> {
    const res = await this.o.db.kysely
      .updateTable('rollouts')
      .set({ ...set, updated_at: this.o.now() })
      .where('id', '=', r.id)
      .where('state', '=', r.state)
      .where('current_wave', '=', r.current_wave)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  private async updateDeployment(
    d: DeploymentRow,
    set: Partial<Omit<DeploymentRow, 'id'>>,
    expected: DeploymentState = d.state,
  ): Promise<boolean> {
    const res = await this.o.db.kysely
      .updateTable('rollout_deployments')
      .set({ ...set, updated_at: this.o.now() })
      .where('id', '=', d.id)
      .where('state', '=', expected)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  private deployments(rolloutId: string): Promise<DeploymentRow[]> {
    return this.o.db.kysely
      .selectFrom('rollout_deployments')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .orderBy('position')
      .execute();
  }

  private async waveSize(rolloutId: string, wave: number): Promise<number> {
    const row = await this.o.db.kysely
      .selectFrom('rollout_deployments')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('rollout_id', '=', rolloutId)
      .where('wave', '=', wave)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  private async progress(rolloutId: string, message: string, deviceId?: string): Promise<void> {
    const r = await this.o.db.kysely
      .selectFrom('rollouts')
      .selectAll()
      .where('id', '=', rolloutId)
      .executeTakeFirstOrThrow();
    const counts = countStates(await this.deployments(rolloutId));
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

  private async row(projectId: string, rolloutId: string): Promise<RolloutRow> {
    const r = await this.o.db.kysely
      .selectFrom('rollouts')
      .selectAll()
      .where('id', '=', rolloutId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    if (r === undefined) {
      const recent = await this.o.db.kysely
        .selectFrom('rollouts')
        .select('id')
        .where('project_id', '=', projectId)
        .orderBy('created_at', 'desc')
        .limit(5)
        .execute();
      throw new PlatformError(
        'not_found',
        `rollout "${rolloutId}" not found${recent.length > 0 ? `; recent rollouts: ${recent.map((x) => x.id).join(', ')}` : '; no rollout exists in this project yet'}`,
      );
    }
    return r;
  }

  private async toStatus(r: RolloutRow): Promise<RolloutStatus> {
    const deps = await this.deployments(r.id);
    const ids = deps.map((d) => d.device_id);
    const seen =
      ids.length === 0
        ? []
        : await this.o.db.kysely
            .selectFrom('devices')
            .select(['id', 'last_heartbeat_at'])
            .where('id', 'in', ids)
            .execute();
    const lastSeen = new Map(seen.map((s) => [s.id, Number(s.last_heartbeat_at)]));
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
          online: last !== undefined && this.o.fleet.isOnline(last),
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

  private systemContext(projectId: string): CallContext {
    return { user: systemPrincipal(), projectId, requestId: 'rollout-controller', log: this.o.log };
  }

  private requireOperator(ctx: CallContext, what: string): void {
    if (!roleAtLeast(ctx.user.role, 'operator'))
      throw new PlatformError(
        'forbidden',
        `to ${what} you need the operator role or above; you are ${ctx.user.role}`,
      );
  }
}

type Verdict = 'wait' | { ok: true; note?: string } | { ok: false; reason: string };

/** Decides the latency and confidence gates of a healthy device from the heartbeats since its switch. */
function verify(d: DeploymentRow, gates: RolloutGates, now: number): Verdict {
  const beats = Number(d.latency_count);
  const observed = now - Number(d.healthy_at ?? now);
  if (beats < gates.minHeartbeats && observed < gates.observeMs) return 'wait';
  if (gates.maxLatencyP95Ms !== null && beats > 0) {
    const p95 = Number(d.latency_sum) / beats;
    if (p95 > gates.maxLatencyP95Ms)
      return {
        ok: false,
        reason: `mean p95 latency ${round(p95)} ms over ${beats} heartbeat(s) is above the ${gates.maxLatencyP95Ms} ms gate`,
      };
  }
  const notes: string[] = [];
  if (beats === 0) notes.push(`no heartbeat on the new model within ${formatDuration(gates.observeMs)}`);
  if (gates.confidenceMargin !== null) {
    const count = Number(d.conf_count);
    const baseline = d.baseline_confidence === null ? null : Number(d.baseline_confidence);
    if (baseline === null)
      notes.push('no confidence baseline from the previous model; confidence gate not applied');
    else if (count === 0) notes.push('no confidence reported on the new model; confidence gate not applied');
    else {
      const mean = Number(d.conf_sum) / count;
      if (mean < baseline - gates.confidenceMargin)
        return {
          ok: false,
          reason: `mean top confidence ${round(mean, 3)} is ${round(baseline - mean, 3)} below the previous model's ${round(baseline, 3)} (margin ${gates.confidenceMargin})`,
        };
    }
  }
  return notes.length === 0 ? { ok: true } : { ok: true, note: notes.join('; ') };
}

function countStates(deps: DeploymentRow[]): Record<DeploymentState, number> {
  const counts = Object.fromEntries(DEPLOYMENT_STATES.map((s) => [s, 0])) as Record<DeploymentState, number>;
  for (const d of deps) counts[d.state]++;
  return counts;
}

function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
