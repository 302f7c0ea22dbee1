import { requireRole, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { priorEffect, recordEffect } from '../effects.js';
import { formatDuration } from './model.js';
import {
  isFinalRollout,
  offlinePolicySchema,
  rolloutGatesSchema,
  rolloutInputSchema,
  rolloutStrategySchema,
  type RolloutInput,
  type RolloutPlan,
  type RolloutState,
  type RolloutStatus,
} from './model.js';
import { RolloutEngine } from './rollout.engine.js';
import { rolloutSettings, type RolloutServiceOptions, type RolloutSettings } from './rollout.options.js';
import { assignWaves, describeTarget } from './rollout.plan.js';
import { RolloutRepository, type RolloutRow } from './rollout.repository.js';
import { RolloutTelemetry } from './rollout.telemetry.js';

export type { RolloutServiceOptions } from './rollout.options.js';

/** The idempotent-effect kind of a created rollout. */
const ROLLOUT_EFFECT = 'fleet.rollout';

/**
 * Staged model rollouts to device groups, as use cases: the dry-run plan, creation,
 * pause/resume/rollback, status. The engine the controller drives (`advance`) is `RolloutEngine`,
 * device telemetry (`applyTelemetry`) is `RolloutTelemetry`, SQL is `RolloutRepository`.
 */
export class RolloutService {
  private readonly o: RolloutSettings;
  private readonly repo: RolloutRepository;
  private readonly engine: RolloutEngine;
  private readonly telemetry: RolloutTelemetry;

  constructor(opts: RolloutServiceOptions) {
    this.o = rolloutSettings(opts);
    this.repo = new RolloutRepository(this.o.db.kysely, this.o.db.dialect);
    this.engine = new RolloutEngine(this.o, this.repo);
    this.telemetry = new RolloutTelemetry(this.o, this.repo, this.engine);
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
    requireRole(ctx, 'operator', 'starting a rollout');
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
      const repo = this.repo.in(trx);
      // Checked inside the transaction (locking the active rows on MySQL) so two starts never share a device.
      const busy = await repo.busyDevices(deploying.map((d) => d.deviceId));
      if (busy.length > 0)
        throw new PlatformError(
          'conflict',
          `device(s) ${[...new Set(busy.map((b) => b.device_id))].join(', ')} are in active rollout ${busy[0]!.rollout_id}; wait for it, or roll it back first`,
        );
      await repo.insert(
        {
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
        },
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
      );
      await recordEffect(trx, ctx, ROLLOUT_EFFECT, { rolloutId: id }, now);
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
    requireRole(ctx, 'operator', 'pausing a rollout');
    const r = await this.row(ctx.projectId, rolloutId);
    if (r.state === 'paused') return this.status(ctx, rolloutId);
    if (isFinalRollout(r.state))
      throw new PlatformError('conflict', `rollout ${rolloutId} already ${r.state}; nothing to pause`);
    const ok = await this.repo.cas(
      r,
      {
        state: 'paused',
        paused_from: r.state,
        reason: `${reason} (${ctx.user.name || ctx.user.userId})`,
      },
      this.o.now(),
    );
    if (!ok) return this.pause(ctx, rolloutId, reason);
    await this.engine.progress(rolloutId, `paused: ${reason}`);
    return this.status(ctx, rolloutId);
  }

  /** Continues a paused rollout from the state it paused in. */
  async resume(ctx: CallContext, rolloutId: string): Promise<RolloutStatus> {
    requireRole(ctx, 'operator', 'resuming a rollout');
    const r = await this.row(ctx.projectId, rolloutId);
    if (r.state !== 'paused')
      throw new PlatformError(
        'conflict',
        `rollout ${rolloutId} is ${r.state}, not paused; only a paused rollout can resume`,
      );
    const back = (r.paused_from ?? 'pending') as RolloutState;
    const ok = await this.repo.cas(r, { state: back, paused_from: null, reason: null }, this.o.now());
    if (!ok) return this.resume(ctx, rolloutId);
    await this.engine.progress(rolloutId, `resumed (${back})`);
    return this.status(ctx, rolloutId);
  }

  /** Rolls back every device the rollout touched (`deploy.rollback` to each); devices not reached are never sent anything. */
  async rollback(ctx: CallContext, rolloutId: string, reason: string): Promise<RolloutStatus> {
    requireRole(ctx, 'operator', 'rolling back a rollout');
    const why =
      typeof reason === 'string' && reason.trim() !== ''
        ? reason.trim().slice(0, 1000)
        : 'rolled back by a person';
    const by = `${why} (${ctx.user.name || ctx.user.userId})`;
    await this.row(ctx.projectId, rolloutId);
    await this.engine.serial(rolloutId, async () => {
      // Read again inside the queue: an advance that ran first may have finished the rollout.
      const r = await this.row(ctx.projectId, rolloutId);
      if (r.state === 'rolled_back') return;
      // A completed or failed rollout can still be undone: its devices run the new model.
      await this.engine.rollbackTouched(r, by, isFinalRollout(r.state));
    });
    return this.status(ctx, rolloutId);
  }

  /** A rollout of the caller's project with per-device progress. */
  async status(ctx: CallContext, rolloutId: string): Promise<RolloutStatus> {
    return this.engine.status(await this.row(ctx.projectId, rolloutId));
  }

  /** Rollouts of the caller's project, newest first (without per-device rows unless `withDevices`). */
  async list(
    ctx: CallContext,
    filter: { state?: RolloutState; offset?: number; limit?: number } = {},
  ): Promise<RolloutStatus[]> {
    const rows = await this.repo.list(ctx.projectId, filter);
    return Promise.all(rows.map((r) => this.engine.status(r)));
  }

  /** Ids of rollouts not yet finished, oldest first (across projects); the controller advances each. */
  async activeRolloutIds(): Promise<string[]> {
    return this.repo.activeIds();
  }

  /**
   * Records `device.health` and `device.heartbeat` against the deployments they concern and returns
   * the ids of the rollouts touched; invalid or unrelated messages are ignored, never thrown.
   */
  applyTelemetry(message: unknown): Promise<string[]> {
    return this.telemetry.apply(message);
  }

  /**
   * Moves one rollout forward from its recorded state: checks gates, rolls back on a failure,
   * applies the offline policy, sends the next devices and opens the next wave. Idempotent; calls
   * for the same rollout in this process run one after another.
   */
  advance(rolloutId: string): Promise<void> {
    return this.engine.advance(rolloutId);
  }

  private async row(projectId: string, rolloutId: string): Promise<RolloutRow> {
    const r = await this.repo.find(projectId, rolloutId);
    if (r === undefined) {
      const recent = await this.repo.recentIds(projectId, 5);
      throw new PlatformError(
        'not_found',
        `rollout "${rolloutId}" not found${recent.length > 0 ? `; recent rollouts: ${recent.join(', ')}` : '; no rollout exists in this project yet'}`,
      );
    }
    return r;
  }
}
