import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventBus } from '../../core/events.js';
import { parseMessage, type MessagePayload } from '../../protocol/envelope.js';
import { STREAMS, type Broker, type Subscription } from '../infra/broker/port.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import type { Logger } from '../../core/log.js';
import type { FleetEvent } from './events.js';
import { DeviceSampleRepository } from './device-samples.repository.js';
import { deviceSearchDoc, searchSignature, type DeviceRow } from './fleet.search.js';
import {
  DEVICE_ID,
  deviceTargetSchema,
  formatDuration,
  type DeviceHealth,
  type DeviceSample,
  type Device,
  type DeviceTarget,
  type HealthThresholds,
} from './model.js';
import { tagSchema } from './model.js';

/** Dependencies and settings of the fleet service. */
export interface FleetServiceOptions {
  db: Db;
  events: EventBus<FleetEvent>;
  log: Logger;
  /** A device is online when its last heartbeat is at most this old (default 30 s). */
  onlineWindowMs?: number;
  /** Project new devices join (heartbeats carry no project; default `default`). */
  defaultProjectId?: string;
  health?: Partial<HealthThresholds>;
  now?: () => number;
  /** How long heartbeat samples are kept (default a day). */
  sampleRetentionMs?: number;
}

const listSchema = z.object({ tag: tagSchema.optional(), online: z.boolean().optional() });

/**
 * The fleet: devices registered and kept current from `device.heartbeat`, groups as tag queries,
 * online status from the heartbeat age, a health summary per device, and search documents.
 */
export class FleetService {
  private readonly db: Db;
  private readonly events: EventBus<FleetEvent>;
  private readonly log: Logger;
  readonly onlineWindowMs: number;
  private readonly defaultProjectId: string;
  private readonly thresholds: HealthThresholds;
  private readonly now: () => number;
  private readonly samples: DeviceSampleRepository;
  private readonly sampleRetentionMs: number;
  private lastPrune = 0;

  constructor(opts: FleetServiceOptions) {
    this.db = opts.db;
    this.events = opts.events;
    this.log = opts.log;
    this.onlineWindowMs = opts.onlineWindowMs ?? 30_000;
    this.defaultProjectId = opts.defaultProjectId ?? 'default';
    this.thresholds = { maxTemperatureC: 80, maxLatencyP95Ms: 200, ...opts.health };
    this.now = opts.now ?? Date.now;
    this.samples = new DeviceSampleRepository(opts.db.kysely);
    this.sampleRetentionMs = opts.sampleRetentionMs ?? 24 * 3600_000;
  }

  /** The device's heartbeat figures of the last `minutes` (60 by default, a day at most), oldest first. */
  async history(
    ctx: CallContext,
    deviceId: string,
    opts: { minutes?: number } = {},
  ): Promise<DeviceSample[]> {
    const device = await this.get(ctx, deviceId);
    const minutes = Math.min(Math.max(opts.minutes ?? 60, 1), 24 * 60);
    return this.samples.since(device.id, this.now() - minutes * 60_000, 2000);
  }

  /** Devices of the caller's project, by name; `tag` keeps those carrying it, `online` those (not) heard from within the window. */
  async list(ctx: CallContext, filter: { tag?: string; online?: boolean } = {}): Promise<Device[]> {
    const parsed = listSchema.safeParse(filter);
    if (!parsed.success)
      throw new PlatformError('invalid_input', `device filter is invalid: ${describeZodError(parsed.error)}`);
    const { tag, online } = parsed.data;
    let q = this.db.kysely
      .selectFrom('devices')
      .selectAll('devices')
      .where('devices.project_id', '=', ctx.projectId);
    if (tag !== undefined)
      q = q
        .innerJoin('device_tags', 'device_tags.device_id', 'devices.id')
        .where('device_tags.tag', '=', tag);
    const cutoff = this.now() - this.onlineWindowMs;
    if (online === true) q = q.where('devices.last_heartbeat_at', '>=', cutoff);
    if (online === false) q = q.where('devices.last_heartbeat_at', '<', cutoff);
    const rows = await q.orderBy('devices.name').orderBy('devices.id').execute();
    return rows.map((r) => this.toDevice(r));
  }

  /** One device of the caller's project. */
  async get(ctx: CallContext, deviceId: string): Promise<Device> {
    const row = await this.db.kysely
      .selectFrom('devices')
      .selectAll()
      .where('id', '=', deviceId)
      .where('project_id', '=', ctx.projectId)
      .executeTakeFirst();
    if (row === undefined) {
      const known = await this.knownIds(ctx.projectId);
      throw new PlatformError(
        'not_found',
        `device "${deviceId}" not found${known.length > 0 ? `; known devices: ${known.join(', ')}` : '; no device has sent a heartbeat yet'}`,
      );
    }
    return this.toDevice(row);
  }

  /** The health summary of one device. */
  async health(
    ctx: CallContext,
    deviceId: string,
  ): Promise<DeviceHealth & { deviceId: string; name: string }> {
    const d = await this.get(ctx, deviceId);
    return { deviceId: d.id, name: d.name, ...d.health };
  }

  /** The devices of a group: every device carrying `tag`, or exactly the listed ids (all must exist). */
  async resolveTarget(ctx: CallContext, target: DeviceTarget): Promise<Device[]> {
    const parsed = deviceTargetSchema.safeParse(target);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `target must be { tag } or { deviceIds }: ${describeZodError(parsed.error)}`,
      );
    const t = parsed.data;
    if ('tag' in t) {
      const devices = await this.list(ctx, { tag: t.tag });
      if (devices.length === 0) {
        const tags = await this.knownTags(ctx.projectId);
        throw new PlatformError(
          'not_found',
          `no device carries tag "${t.tag}"${tags.length > 0 ? `; known tags: ${tags.join(', ')}` : '; no device has reported tags yet'}`,
        );
      }
      return devices;
    }
    const ids = [...new Set(t.deviceIds)];
    const rows = await this.db.kysely
      .selectFrom('devices')
      .selectAll()
      .where('project_id', '=', ctx.projectId)
      .where('id', 'in', ids)
      .execute();
    const found = new Map(rows.map((r) => [r.id, r]));
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0) {
      const known = await this.knownIds(ctx.projectId);
      throw new PlatformError(
        'not_found',
        `unknown device(s) ${missing.join(', ')}; known devices: ${known.join(', ') || 'none'}`,
      );
    }
    return ids.map((id) => this.toDevice(found.get(id)!));
  }

  /** The project a device belongs to (the default project for devices not seen yet). */
  async projectOf(deviceId: string): Promise<string> {
    const row = await this.db.kysely
      .selectFrom('devices')
      .select('project_id')
      .where('id', '=', deviceId)
      .executeTakeFirst();
    return row?.project_id ?? this.defaultProjectId;
  }

  /** True when a heartbeat at `lastHeartbeatAt` still counts as online. */
  isOnline(lastHeartbeatAt: number): boolean {
    return lastHeartbeatAt >= this.now() - this.onlineWindowMs;
  }

  /**
   * Subscribes to `vision.telemetry` as the single active named consumer `platform-fleet`. Without a
   * stored offset it starts at new messages: replaying old heartbeats would show dead devices online.
   */
  startConsumers(broker: Broker): Promise<Subscription> {
    return broker.subscribe(
      STREAMS.telemetry,
      { name: 'platform-fleet', singleActive: true, from: 'next' },
      (envelope) => this.handleTelemetry(envelope),
    );
  }

  /** Applies one telemetry message (only `device.heartbeat` matters here); invalid ones are logged and ignored, never thrown. */
  async handleTelemetry(message: unknown): Promise<void> {
    const parsed = parseMessage(message);
    if (!parsed.ok) {
      this.log.warn({ error: parsed.error }, 'fleet consumer skipped an invalid message');
      return;
    }
    const m = parsed.message;
    if (m.type !== 'device.heartbeat') return;
    try {
      await this.onHeartbeat(m.payload);
    } catch (err) {
      this.log.error(
        { err: (err as Error).message, deviceId: m.payload.deviceId },
        'fleet consumer failed to apply a heartbeat',
      );
    }
  }

  private async onHeartbeat(hb: MessagePayload<'device.heartbeat'>): Promise<void> {
    if (!DEVICE_ID.test(hb.deviceId)) {
      this.log.warn(
        { deviceId: hb.deviceId.slice(0, 200) },
        `heartbeat from an invalid device id ignored; ids must match ${DEVICE_ID.source}`,
      );
      return;
    }
    const now = this.now();
    const tags = [...new Set(hb.tags.map((t) => t.trim()).filter((t) => t !== '' && t.length <= 100))].sort();
    const values = {
      name: hb.name.slice(0, 191) || hb.deviceId,
      tags: JSON.stringify(tags),
      hardware: hb.hardware.slice(0, 255),
      runtime: JSON.stringify(hb.runtime),
      provider: hb.provider.slice(0, 64),
      model_version_id: hb.modelVersionId,
      state: hb.state,
      fps: hb.fps,
      latency_p50_ms: hb.latencyP50Ms,
      latency_p95_ms: hb.latencyP95Ms,
      mean_top_confidence: hb.meanTopConfidence,
      cpu_percent: hb.cpuPercent,
      memory_mb: hb.memoryMb,
      temperature_c: hb.temperatureC,
      build_progress: hb.buildProgress ?? null,
      last_heartbeat_at: now,
      updated_at: now,
    };
    const result = await this.db.transaction(async (trx) => {
      const before = await trx
        .selectFrom('devices')
        .selectAll()
        .where('id', '=', hb.deviceId)
        .executeTakeFirst();
      let row: DeviceRow;
      if (before === undefined) {
        row = {
          id: hb.deviceId,
          project_id: this.defaultProjectId,
          ...values,
          previous_model_version_id: hb.previousModelVersionId ?? null,
          first_seen_at: now,
        };
        await trx.insertInto('devices').values(row).execute();
      } else {
        // The device knows its previous model best; otherwise infer it from a model change.
        const previous =
          hb.previousModelVersionId !== undefined
            ? hb.previousModelVersionId
            : before.model_version_id !== hb.modelVersionId
              ? before.model_version_id
              : before.previous_model_version_id;
        row = { ...before, ...values, previous_model_version_id: previous };
        await trx
          .updateTable('devices')
          .set({ ...values, previous_model_version_id: previous })
          .where('id', '=', hb.deviceId)
          .execute();
      }
      await this.samples.in(trx).record(hb.deviceId, {
        at: now,
        fps: hb.fps,
        latencyP95Ms: hb.latencyP95Ms,
        meanTopConfidence: hb.meanTopConfidence,
      });
      const changed = before === undefined || searchSignature(before) !== searchSignature(row);
      if (changed) {
        if (before === undefined || before.tags !== row.tags)
          await this.syncTags(trx, row.id, row.project_id, tags);
        await enqueueIndex(trx, { op: 'upsert', doc: deviceSearchDoc(row) });
      }
      return { row, changed, registered: before === undefined };
    });
    if (result.registered) this.log.info({ deviceId: hb.deviceId, tags }, 'device registered');
    // old samples go at most once a minute per process
    if (now - this.lastPrune >= 60_000) {
      this.lastPrune = now;
      await this.samples.prune(now - this.sampleRetentionMs);
    }
    if (result.changed) {
      this.events.emit({
        type: 'device.updated',
        projectId: result.row.project_id,
        at: now,
        device: this.toDevice(result.row),
        registered: result.registered,
      });
    }
  }

  private async syncTags(
    trx: Kysely<Database>,
    deviceId: string,
    projectId: string,
    tags: string[],
  ): Promise<void> {
    await trx.deleteFrom('device_tags').where('device_id', '=', deviceId).execute();
    if (tags.length > 0)
      await trx
        .insertInto('device_tags')
        .values(tags.map((tag) => ({ device_id: deviceId, project_id: projectId, tag })))
        .execute();
  }

  private async knownIds(projectId: string): Promise<string[]> {
    const rows = await this.db.kysely
      .selectFrom('devices')
      .select('id')
      .where('project_id', '=', projectId)
      .orderBy('id')
      .limit(20)
      .execute();
    return rows.map((r) => r.id);
  }

  private async knownTags(projectId: string): Promise<string[]> {
    const rows = await this.db.kysely
      .selectFrom('device_tags')
      .select('tag')
      .distinct()
      .where('project_id', '=', projectId)
      .orderBy('tag')
      .limit(20)
      .execute();
    return rows.map((r) => r.tag);
  }

  /** @internal Maps a row to the public shape with its health. */
  toDevice(r: DeviceRow): Device {
    const lastHeartbeatAt = Number(r.last_heartbeat_at);
    const device: Omit<Device, 'health'> = {
      id: r.id,
      projectId: r.project_id,
      name: r.name,
      tags: JSON.parse(r.tags) as string[],
      hardware: r.hardware,
      runtime: JSON.parse(r.runtime) as Record<string, string>,
      provider: r.provider,
      modelVersionId: r.model_version_id,
      previousModelVersionId: r.previous_model_version_id,
      state: r.state,
      fps: Number(r.fps),
      latencyP50Ms: Number(r.latency_p50_ms),
      latencyP95Ms: Number(r.latency_p95_ms),
      meanTopConfidence: r.mean_top_confidence === null ? null : Number(r.mean_top_confidence),
      cpuPercent: Number(r.cpu_percent),
      memoryMb: Number(r.memory_mb),
      temperatureC: r.temperature_c === null ? null : Number(r.temperature_c),
      buildProgress: r.build_progress === null ? null : Number(r.build_progress),
      firstSeenAt: Number(r.first_seen_at),
      lastHeartbeatAt,
    };
    return { ...device, health: this.healthOf(device) };
  }

  private healthOf(d: Omit<Device, 'health'>): DeviceHealth {
    const ago = Math.max(0, this.now() - d.lastHeartbeatAt);
    const online = this.isOnline(d.lastHeartbeatAt);
    const issues: string[] = [];
    if (!online)
      issues.push(
        `no heartbeat for ${formatDuration(ago)} (offline after ${formatDuration(this.onlineWindowMs)})`,
      );
    if (d.state === 'error') issues.push('the device reports an error state');
    if (d.state === 'idle' && d.modelVersionId === null) issues.push('no model deployed');
    if (d.temperatureC !== null && d.temperatureC > this.thresholds.maxTemperatureC)
      issues.push(
        `temperature ${Math.round(d.temperatureC)} °C is above ${this.thresholds.maxTemperatureC} °C`,
      );
    if (d.state === 'serving' && d.latencyP95Ms > this.thresholds.maxLatencyP95Ms)
      issues.push(
        `p95 latency ${Math.round(d.latencyP95Ms)} ms is above ${this.thresholds.maxLatencyP95Ms} ms`,
      );
    const status: DeviceHealth['status'] = !online
      ? 'offline'
      : d.state === 'error'
        ? 'error'
        : issues.length > 0
          ? 'warn'
          : 'ok';
    return { status, online, lastHeartbeatAgoMs: ago, issues };
  }
}
