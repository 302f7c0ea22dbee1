import type { Insertable, Kysely, Selectable } from 'kysely';
import { page, type PageRequest } from '../../core/paging.js';
import type { DbDialect } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { DeploymentState, RolloutState } from './model.js';

/** A rollout row. */
export type RolloutRow = Selectable<Database['rollouts']>;
/** A per-device deployment row of a rollout. */
export type DeploymentRow = Selectable<Database['rollout_deployments']>;
/** A device row, as the rollout engine reads it. */
export type DeviceRow = Selectable<Database['devices']>;

/** The states of a rollout that is not finished. */
export const ACTIVE: RolloutState[] = ['pending', 'canary', 'waves', 'paused'];

/** The rollouts' SQL, on a database or an open transaction; state changes are compare-and-set on the state read. */
export class RolloutRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DbDialect,
  ) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): RolloutRepository {
    return new RolloutRepository(trx, this.dialect);
  }

  find(projectId: string, rolloutId: string): Promise<RolloutRow | undefined> {
    return this.db
      .selectFrom('rollouts')
      .selectAll()
      .where('id', '=', rolloutId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
  }

  /** A rollout by id in any project (the controller and telemetry name rollouts, not projects). */
  findById(rolloutId: string): Promise<RolloutRow | undefined> {
    return this.db.selectFrom('rollouts').selectAll().where('id', '=', rolloutId).executeTakeFirst();
  }

  byId(rolloutId: string): Promise<RolloutRow> {
    return this.db.selectFrom('rollouts').selectAll().where('id', '=', rolloutId).executeTakeFirstOrThrow();
  }

  /** Ids of a project's `n` newest rollouts. */
  async recentIds(projectId: string, n: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('rollouts')
      .select('id')
      .where('project_id', '=', projectId)
      .orderBy('created_at', 'desc')
      .limit(n)
      .execute();
    return rows.map((r) => r.id);
  }

  list(projectId: string, filter: { state?: RolloutState } & PageRequest): Promise<RolloutRow[]> {
    const { limit, offset } = page(filter, { default: 20, max: 200 });
    let q = this.db.selectFrom('rollouts').selectAll().where('project_id', '=', projectId);
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute();
  }

  /** Ids of rollouts not yet finished, oldest first. */
  async activeIds(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('rollouts')
      .select('id')
      .where('state', 'in', ACTIVE)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => r.id);
  }

  /** Which of `deviceIds` are in an active rollout (locking the active rollouts on MySQL, so two starts never share a device). */
  async busyDevices(deviceIds: string[]): Promise<{ device_id: string; rollout_id: string }[]> {
    let active = this.db.selectFrom('rollouts').select('id').where('state', 'in', ACTIVE);
    if (this.dialect === 'mysql') active = active.forUpdate();
    const activeIds = (await active.execute()).map((a) => a.id);
    if (activeIds.length === 0 || deviceIds.length === 0) return [];
    return this.db
      .selectFrom('rollout_deployments')
      .select(['device_id', 'rollout_id'])
      .where('rollout_id', 'in', activeIds)
      .where('device_id', 'in', deviceIds)
      .execute();
  }

  async insert(rollout: Insertable<Database['rollouts']>, deployments: DeploymentRow[]): Promise<void> {
    await this.db.insertInto('rollouts').values(rollout).execute();
    await this.db.insertInto('rollout_deployments').values(deployments).execute();
  }

  /** Updates a rollout still in the state and wave it was read in; false when it moved on. */
  async cas(r: RolloutRow, set: Partial<Omit<RolloutRow, 'id'>>, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('rollouts')
      .set({ ...set, updated_at: now })
      .where('id', '=', r.id)
      .where('state', '=', r.state)
      .where('current_wave', '=', r.current_wave)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Sets a rollout's fields whatever its state (the reason of a rollback, the end of an undone rollout). */
  async set(rolloutId: string, set: Partial<Omit<RolloutRow, 'id'>>, now: number): Promise<void> {
    await this.db
      .updateTable('rollouts')
      .set({ ...set, updated_at: now })
      .where('id', '=', rolloutId)
      .execute();
  }

  /**
   * Ends an active rollout: its state, optionally one deployment failed, every deployment not sent
   * yet skipped. False when the rollout was no longer active.
   */
  async finish(
    rolloutId: string,
    state: 'completed' | 'rolled_back' | 'failed',
    reason: string | null,
    now: number,
    failDeployment?: { deploymentId: string; message: string },
  ): Promise<boolean> {
    const res = await this.db
      .updateTable('rollouts')
      .set({ state, reason, finished_at: now, updated_at: now, paused_from: null })
      .where('id', '=', rolloutId)
      .where('state', 'in', ACTIVE)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return false;
    if (failDeployment !== undefined)
      await this.db
        .updateTable('rollout_deployments')
        .set({ state: 'failed', message: failDeployment.message, finished_at: now, updated_at: now })
        .where('id', '=', failDeployment.deploymentId)
        .execute();
    await this.db
      .updateTable('rollout_deployments')
      .set({
        state: 'skipped',
        message: `not sent: rollout ${state.replace('_', ' ')}`,
        finished_at: now,
        updated_at: now,
      })
      .where('rollout_id', '=', rolloutId)
      .where('state', '=', 'pending')
      .execute();
    return true;
  }

  /** Updates a deployment still in state `expected`; false when it moved on. */
  async updateDeployment(
    d: DeploymentRow,
    set: Partial<Omit<DeploymentRow, 'id'>>,
    expected: DeploymentState,
    now: number,
  ): Promise<boolean> {
    const res = await this.db
      .updateTable('rollout_deployments')
      .set({ ...set, updated_at: now })
      .where('id', '=', d.id)
      .where('state', '=', expected)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  deployment(deploymentId: string): Promise<DeploymentRow | undefined> {
    return this.db
      .selectFrom('rollout_deployments')
      .selectAll()
      .where('id', '=', deploymentId)
      .executeTakeFirst();
  }

  deployments(rolloutId: string): Promise<DeploymentRow[]> {
    return this.db
      .selectFrom('rollout_deployments')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .orderBy('position')
      .execute();
  }

  async waveSize(rolloutId: string, wave: number): Promise<number> {
    const row = await this.db
      .selectFrom('rollout_deployments')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('rollout_id', '=', rolloutId)
      .where('wave', '=', wave)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  device(deviceId: string): Promise<DeviceRow | undefined> {
    return this.db.selectFrom('devices').selectAll().where('id', '=', deviceId).executeTakeFirst();
  }

  /** When each of `deviceIds` last sent a heartbeat (ms). */
  async lastHeartbeats(deviceIds: string[]): Promise<Map<string, number>> {
    if (deviceIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('devices')
      .select(['id', 'last_heartbeat_at'])
      .where('id', 'in', deviceIds)
      .execute();
    return new Map(rows.map((s) => [s.id, Number(s.last_heartbeat_at)]));
  }

  /** Adds one heartbeat's latency and confidence to the healthy, not yet verified deployments of `deviceId` on `modelVersionId`; returns their rollout ids. */
  async addHeartbeat(
    deviceId: string,
    modelVersionId: string,
    latencyP95Ms: number,
    confidence: number | null,
    now: () => number,
  ): Promise<string[]> {
    const rows = await this.db
      .selectFrom('rollout_deployments as d')
      .innerJoin('rollouts as r', 'r.id', 'd.rollout_id')
      .select(['d.id', 'd.rollout_id'])
      .where('d.device_id', '=', deviceId)
      .where('d.state', '=', 'healthy')
      .where('d.verified_at', 'is', null)
      .where('r.state', 'in', ACTIVE)
      .where('r.model_version_id', '=', modelVersionId)
      .execute();
    for (const row of rows) {
      await this.db
        .updateTable('rollout_deployments')
        .set((eb) => ({
          latency_sum: eb('latency_sum', '+', latencyP95Ms),
          latency_count: eb('latency_count', '+', 1),
          ...(confidence === null
            ? {}
            : { conf_sum: eb('conf_sum', '+', confidence), conf_count: eb('conf_count', '+', 1) }),
          updated_at: now(),
        }))
        .where('id', '=', row.id)
        .where('state', '=', 'healthy')
        .execute();
    }
    return [...new Set(rows.map((r) => r.rollout_id))];
  }
}
