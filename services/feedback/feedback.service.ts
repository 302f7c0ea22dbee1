import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import { roleAtLeast, systemPrincipal, type CallContext } from '../../core/context.js';
import { priorEffect } from '../effects.js';
import { VERSION_EFFECT } from '../datasets/model.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventBus } from '../../core/events.js';
import { newId } from '../../core/ids.js';
import { parseMessage, type MessagePayload } from '../../protocol/envelope.js';
import { STREAMS, type Broker, type Subscription } from '../infra/broker/port.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { Storage } from '../infra/storage/port.js';
import type { Logger } from '../../core/log.js';
import type { FeedbackEvent } from './events.js';
import {
  FEEDBACK_REASONS,
  FEEDBACK_STATUSES,
  FEEDBACK_UPLOAD_TYPES,
  MAX_UPLOADS_PER_CALL,
  DEFAULT_FEEDBACK_UPLOAD_MAX_BYTES,
  retrainPolicySchema,
  reviewSchema,
  type FeedbackReason,
  type FeedbackStatus,
  type FeedbackUploadType,
  type ReviewedBox,
  type FeedbackSample,
  type RetrainPlan,
  type RetrainProposal,
  type RetrainPolicy,
  type ReviewDecision,
} from './model.js';

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const listSchema = z.object({
  status: z.enum(FEEDBACK_STATUSES).optional(),
  deviceId: z.string().max(128).optional(),
  reason: z.enum(FEEDBACK_REASONS).optional(),
  offset: z.number().int().min(0).default(0),
  limit: z.number().int().min(1).max(500).default(50),
});

const toDatasetSchema = z.object({
  dataset: z.string().trim().min(1).max(200),
  sampleIds: z.array(z.string().min(1).max(64)).min(1).max(10_000).optional(),
  note: z.string().max(2000).optional(),
});

/** What feedback needs from the datasets domain (`DatasetService` satisfies it). */
export interface FeedbackDatasets {
  addSamples(
    ctx: CallContext,
    ref: string,
    samples: Array<{ imageKey: string; boxes: ReviewedBox[]; source?: string }>,
    opts?: { note?: string; lineage?: Record<string, unknown> },
  ): Promise<{ ref: string }>;
}

/** What feedback reads from the registry (`ModelRegistry` satisfies it): a version's name and lineage. */
export interface FeedbackModels {
  get(
    ctx: CallContext,
    ref: string,
  ): Promise<{
    id: string;
    name: string;
    ref: string;
    lineage: { datasetName: string | null; config: unknown };
  }>;
}

/** Dependencies and settings of the feedback service. */
export interface FeedbackServiceOptions {
  db: Db;
  storage: Storage;
  datasets: FeedbackDatasets;
  events: EventBus<FeedbackEvent>;
  log: Logger;
  /** The registry, to name the model of each sample and to default a plan's dataset and config. */
  models?: FeedbackModels;
  /** The project a device belongs to (e.g. `FleetService.projectOf`); default: `default`. */
  projectOf?: (deviceId: string) => Promise<string>;
  /** Lifetime of upload URLs (default 15 min). */
  uploadUrlTtlSeconds?: number;
  /** Largest feedback frame a device may upload, in bytes (default 10 MiB). */
  uploadMaxBytes?: number;
  now?: () => number;
}

type SampleRow = Selectable<Database['feedback_samples']>;

/**
 * The feedback loop on the platform: samples devices send (idempotent by image key), signed upload
 * URLs for them, a review queue, accepted samples becoming a new dataset version with lineage,
 * confidence per tag over time, and retrain policies that only ever propose.
 */
export class FeedbackService {
  private readonly o: Required<Omit<FeedbackServiceOptions, 'models' | 'now'>> &
    Pick<FeedbackServiceOptions, 'models'> & { now: () => number };
  private readonly modelNames = new Map<string, string | null>();

  constructor(opts: FeedbackServiceOptions) {
    this.o = {
      uploadUrlTtlSeconds: 900,
      uploadMaxBytes: DEFAULT_FEEDBACK_UPLOAD_MAX_BYTES,
      projectOf: async () => 'default',
      now: Date.now,
      ...opts,
    } as FeedbackService['o'];
  }

  /**
   * Upload URLs for a caller speaking for a device: an API token with scope `device:<id>` of the
   * device's project, or an admin of that project; the device must be registered in the caller's
   * project (another project's device is reported like a missing one).
   */
  async issueDeviceUploadUrls(
    ctx: CallContext,
    deviceId: string,
    input: { count: number; contentType?: FeedbackUploadType },
  ): Promise<Array<{ url: string; key: string; expiresAt: number }>> {
    const user = ctx.user;
    const allowed =
      user.kind === 'token'
        ? (user.scopes ?? []).includes(`device:${deviceId}`)
        : roleAtLeast(user.role, 'admin');
    if (!allowed) {
      throw new PlatformError(
        'forbidden',
        `only device ${String(deviceId).slice(0, 130)} (an API token with scope "device:<id>", created by an admin) or an admin may ask for its upload URLs`,
      );
    }
    const row = await this.o.db.kysely
      .selectFrom('devices')
      .select('project_id')
      .where('id', '=', deviceId)
      .executeTakeFirst();
    if (row === undefined || row.project_id !== ctx.projectId) {
      throw new PlatformError(
        'not_found',
        `device "${String(deviceId).slice(0, 130)}" is not registered in this project; it registers with its first heartbeat`,
      );
    }
    return this.issueUploadUrls(
      deviceId,
      input.count,
      input.contentType === undefined ? {} : { contentType: input.contentType },
    );
  }

  /**
   * Presigned PUT URLs and keys under `feedback/<deviceId>/` for a device's next samples (callers check
   * who asks: see `issueDeviceUploadUrls`). Each URL takes one image of the given type (JPEG by
   * default) of at most `uploadMaxBytes`.
   */
  async issueUploadUrls(
    deviceId: string,
    count: number,
    opts: { contentType?: FeedbackUploadType } = {},
  ): Promise<Array<{ url: string; key: string; expiresAt: number }>> {
    if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId))
      throw new PlatformError(
        'invalid_input',
        `device id "${String(deviceId).slice(0, 130)}" is invalid; ids match ${DEVICE_ID.source}`,
      );
    if (!Number.isInteger(count) || count < 1 || count > MAX_UPLOADS_PER_CALL)
      throw new PlatformError(
        'invalid_input',
        `ask for 1 to ${MAX_UPLOADS_PER_CALL} upload URLs at a time, not ${count}`,
      );
    const contentType = opts.contentType ?? 'image/jpeg';
    const ext = (FEEDBACK_UPLOAD_TYPES as Record<string, string>)[contentType];
    if (ext === undefined) {
      throw new PlatformError(
        'invalid_input',
        `feedback uploads are images: ${Object.keys(FEEDBACK_UPLOAD_TYPES).join(', ')}; not "${String(contentType).slice(0, 100)}"`,
      );
    }
    const now = this.o.now();
    const day = new Date(now).toISOString().slice(0, 10);
    const expiresAt = now + this.o.uploadUrlTtlSeconds * 1000;
    const out: Array<{ url: string; key: string; expiresAt: number }> = [];
    for (let i = 0; i < count; i++) {
      const key = `feedback/${deviceId}/${day}/${randomUUID()}.${ext}`;
      const url = await this.o.storage.presignPut(key, this.o.uploadUrlTtlSeconds, {
        contentType,
        maxBytes: this.o.uploadMaxBytes,
      });
      out.push({ key, url, expiresAt });
    }
    return out;
  }

  /** Subscribes to `vision.telemetry` as the single active named consumer `platform-feedback`. */
  startConsumers(broker: Broker): Promise<Subscription> {
    return broker.subscribe(
      STREAMS.telemetry,
      { name: 'platform-feedback', singleActive: true, from: 'first' },
      (envelope) => this.handleTelemetry(envelope),
    );
  }

  /** Applies `feedback.sample` (to the queue) and `device.heartbeat` (confidence per tag); anything invalid is logged and ignored. */
  async handleTelemetry(message: unknown): Promise<void> {
    const parsed = parseMessage(message);
    if (!parsed.ok) {
      this.o.log.warn({ error: parsed.error }, 'feedback consumer skipped an invalid message');
      return;
    }
    const m = parsed.message;
    try {
      if (m.type === 'feedback.sample') await this.onSample(m.payload);
      else if (m.type === 'device.heartbeat') {
        // Bucket by when the device sent it (never later than now), so a replayed backlog lands in its own hours.
        const sent = Date.parse(m.ts);
        await this.onHeartbeat(
          m.payload,
          Number.isFinite(sent) ? Math.min(sent, this.o.now()) : this.o.now(),
        );
      }
    } catch (err) {
      this.o.log.error(
        { err: (err as Error).message, type: m.type },
        'feedback consumer failed to apply a message',
      );
    }
  }

  /** The review queue of the caller's project, oldest first, with the total matching. */
  async list(
    ctx: CallContext,
    filter: {
      status?: FeedbackStatus;
      deviceId?: string;
      reason?: FeedbackReason;
      offset?: number;
      limit?: number;
    } = {},
  ): Promise<{ total: number; items: FeedbackSample[] }> {
    const parsed = listSchema.safeParse(filter);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `feedback filter is invalid: ${describeZodError(parsed.error)}`,
      );
    const f = parsed.data;
    let q = this.o.db.kysely.selectFrom('feedback_samples').where('project_id', '=', ctx.projectId);
    if (f.status !== undefined) q = q.where('status', '=', f.status);
    if (f.deviceId !== undefined) q = q.where('device_id', '=', f.deviceId);
    if (f.reason !== undefined) q = q.where('reason', '=', f.reason);
    const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q
      .selectAll()
      .orderBy('received_at')
      .orderBy('id')
      .offset(f.offset)
      .limit(f.limit)
      .execute();
    return { total: Number(total.n), items: rows.map(toSample) };
  }

  /** One sample of the caller's project. */
  async get(ctx: CallContext, sampleId: string): Promise<FeedbackSample> {
    return toSample(await this.row(ctx.projectId, sampleId));
  }

  /** A short-lived signed URL to show a sample's image to a reviewer. */
  async imageUrl(ctx: CallContext, sampleId: string, ttlSeconds = 600): Promise<string> {
    const row = await this.row(ctx.projectId, sampleId);
    return this.o.storage.presignGet(row.image_key, ttlSeconds);
  }

  /** Accepts a sample (with corrected boxes, or the predictions as they are) or rejects it with a reason. */
  async review(ctx: CallContext, sampleId: string, decision: ReviewDecision): Promise<FeedbackSample> {
    this.requireOperator(ctx, 'review feedback');
    const parsed = reviewSchema.safeParse(decision);
    if (!parsed.success)
      throw new PlatformError('invalid_input', `review is invalid: ${describeZodError(parsed.error)}`);
    const d = parsed.data;
    const row = await this.row(ctx.projectId, sampleId);
    if (row.used_in !== null)
      throw new PlatformError(
        'conflict',
        `sample ${sampleId} is already in ${row.used_in.startsWith('claim:') ? 'a dataset version being made' : row.used_in}; it can no longer be re-reviewed`,
      );
    const now = this.o.now();
    const set =
      d.decision === 'accept'
        ? {
            status: 'accepted' as const,
            boxes: JSON.stringify(d.boxes ?? predictionsAsBoxes(toSample(row))),
            reject_reason: null,
          }
        : { status: 'rejected' as const, boxes: null, reject_reason: d.reason };
    const res = await this.o.db.kysely
      .updateTable('feedback_samples')
      .set({ ...set, reviewed_by: ctx.user.userId, reviewed_at: now })
      .where('id', '=', sampleId)
      .where('used_in', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0)
      throw new PlatformError(
        'conflict',
        `sample ${sampleId} was just used in a dataset version; reload the queue`,
      );
    const sample = await this.get(ctx, sampleId);
    this.o.events.emit({ type: 'feedback.reviewed', projectId: ctx.projectId, at: now, sample });
    return sample;
  }

  /**
   * Makes a new version of `dataset` with accepted samples (default: every accepted sample not yet
   * used), through `DatasetService.addSamples`, with the samples, devices and model versions as lineage.
   */
  async toDataset(
    ctx: CallContext,
    input: { dataset: string; sampleIds?: string[]; note?: string },
  ): Promise<{ ref: string; sampleIds: string[] }> {
    this.requireOperator(ctx, 'add feedback to a dataset');
    const parsed = toDatasetSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError('invalid_input', `request is invalid: ${describeZodError(parsed.error)}`);
    const { dataset, note } = parsed.data;
    if (ctx.idempotencyKey !== undefined) {
      // a retried step: the version it made the first time, or its claim released if it made none
      const done = await this.versionMadeEarlier(ctx);
      if (done !== undefined) return done;
      await this.release(`claim:${ctx.idempotencyKey}`);
    }
    let rows: SampleRow[];
    if (parsed.data.sampleIds === undefined) {
      rows = await this.o.db.kysely
        .selectFrom('feedback_samples')
        .selectAll()
        .where('project_id', '=', ctx.projectId)
        .where('status', '=', 'accepted')
        .where('used_in', 'is', null)
        .orderBy('received_at')
        .limit(10_000)
        .execute();
      if (rows.length === 0)
        throw new PlatformError(
          'invalid_input',
          'no accepted feedback sample waits for a dataset; review the queue first',
        );
    } else {
      const ids = [...new Set(parsed.data.sampleIds)];
      rows = await this.o.db.kysely
        .selectFrom('feedback_samples')
        .selectAll()
        .where('project_id', '=', ctx.projectId)
        .where('id', 'in', ids)
        .execute();
      const found = new Set(rows.map((r) => r.id));
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length > 0)
        throw new PlatformError(
          'not_found',
          `feedback sample(s) ${missing.join(', ')} not found in this project`,
        );
      const notAccepted = rows.filter((r) => r.status !== 'accepted');
      if (notAccepted.length > 0)
        throw new PlatformError(
          'invalid_input',
          `sample(s) ${notAccepted.map((r) => `${r.id} (${r.status})`).join(', ')} are not accepted; only accepted samples join a dataset`,
        );
      const used = rows.filter((r) => r.used_in !== null);
      if (used.length > 0)
        throw new PlatformError(
          'conflict',
          `sample(s) ${used.map((r) => `${r.id} (in ${r.used_in})`).join(', ')} are already in a dataset version`,
        );
    }
    const ids = rows.map((r) => r.id);
    const claim = `claim:${ctx.idempotencyKey ?? randomUUID()}`;
    const claimed = await this.o.db.kysely
      .updateTable('feedback_samples')
      .set({ used_in: claim })
      .where('id', 'in', ids)
      .where('used_in', 'is', null)
      .where('status', '=', 'accepted')
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== ids.length) {
      await this.release(claim);
      throw new PlatformError(
        'conflict',
        'some of these samples were just used or re-reviewed by someone else; reload the queue and retry',
      );
    }
    let ref: string;
    try {
      const samples = rows.map((r) => ({
        imageKey: r.image_key,
        boxes: JSON.parse(r.boxes ?? '[]') as ReviewedBox[],
        source: `feedback/${r.id}`,
      }));
      const result = await this.o.datasets.addSamples(ctx, dataset, samples, {
        note:
          note ??
          `${rows.length} reviewed feedback sample(s) from ${new Set(rows.map((r) => r.device_id)).size} device(s)`,
        lineage: {
          source: 'feedback',
          feedbackSampleIds: ids,
          devices: [...new Set(rows.map((r) => r.device_id))].sort(),
          modelVersions: [
            ...new Set(rows.map((r) => r.model_version_id).filter((v): v is string => v !== null)),
          ].sort(),
          reasons: countBy(rows.map((r) => r.reason)),
          reviewedBy: [
            ...new Set(rows.map((r) => r.reviewed_by).filter((v): v is string => v !== null)),
          ].sort(),
          requestedBy: ctx.user.userId,
        },
      });
      ref = result.ref;
    } catch (err) {
      await this.release(claim);
      throw err;
    }
    const now = this.o.now();
    await this.o.db.kysely
      .updateTable('feedback_samples')
      .set({ used_in: ref, used_at: now })
      .where('used_in', '=', claim)
      .execute();
    ctx.log.info({ ref, samples: ids.length }, 'feedback samples added to a new dataset version');
    this.o.events.emit({
      type: 'feedback.dataset_created',
      projectId: ctx.projectId,
      at: now,
      ref,
      sampleIds: ids,
    });
    return { ref, sampleIds: ids };
  }

  /** Counts per reason, status, device and model version, and mean top confidence by day per tag (last `days`, default 7). */
  async summary(ctx: CallContext, opts: { days?: number } = {}) {
    const days = Math.min(Math.max(Math.floor(opts.days ?? 7), 1), 90);
    const k = this.o.db.kysely;
    const group = async (col: 'reason' | 'status' | 'device_id' | 'model_version_id') => {
      const rows = await k
        .selectFrom('feedback_samples')
        .select([col, (eb) => eb.fn.countAll<number>().as('n')])
        .where('project_id', '=', ctx.projectId)
        .groupBy(col)
        .execute();
      return Object.fromEntries(
        rows.map((r) => [String((r as Record<string, unknown>)[col] ?? 'unknown'), Number(r.n)]),
      );
    };
    const since = Math.floor((this.o.now() - days * DAY) / DAY) * DAY;
    const buckets = await k
      .selectFrom('feedback_confidence')
      .selectAll()
      .where('project_id', '=', ctx.projectId)
      .where('hour_start', '>=', since)
      .orderBy('hour_start')
      .execute();
    const byDay = new Map<string, { day: string; tag: string; sum: number; count: number }>();
    for (const b of buckets) {
      const day = new Date(Number(b.hour_start)).toISOString().slice(0, 10);
      const key = `${day}\u0000${b.tag}`;
      const e = byDay.get(key) ?? { day, tag: b.tag, sum: 0, count: 0 };
      e.sum += Number(b.conf_sum);
      e.count += Number(b.conf_count);
      byDay.set(key, e);
    }
    const waiting = await k
      .selectFrom('feedback_samples')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('project_id', '=', ctx.projectId)
      .where('status', '=', 'accepted')
      .where('used_in', 'is', null)
      .executeTakeFirstOrThrow();
    return {
      byReason: await group('reason'),
      byStatus: await group('status'),
      byDevice: await group('device_id'),
      byModelVersion: await group('model_version_id'),
      acceptedNotInDataset: Number(waiting.n),
      meanConfidenceByDay: [...byDay.values()]
        .sort((a, b) => a.day.localeCompare(b.day) || a.tag.localeCompare(b.tag))
        .map((e) => ({ day: e.day, tag: e.tag, meanTopConfidence: e.sum / e.count, heartbeats: e.count })),
    };
  }

  /** Sets (replaces) the retrain policy of a model. */
  async setPolicy(
    ctx: CallContext,
    modelName: string,
    policy: z.input<typeof retrainPolicySchema>,
  ): Promise<RetrainPolicy> {
    this.requireOperator(ctx, 'set a retrain policy');
    const parsed = retrainPolicySchema.safeParse(policy);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `retrain policy is invalid: ${describeZodError(parsed.error)}`,
      );
    if (typeof modelName !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,99}$/.test(modelName))
      throw new PlatformError('invalid_input', `"${String(modelName)}" is not a model name`);
    if (this.o.models !== undefined) await this.o.models.get(ctx, modelName);
    else if (parsed.data.dataset === undefined)
      throw new PlatformError(
        'invalid_input',
        'name the dataset to extend (`dataset`); the registry is not available to find the training dataset',
      );
    const now = this.o.now();
    const values = { policy: JSON.stringify(parsed.data), updated_by: ctx.user.userId, updated_at: now };
    await this.o.db.transaction(async (trx) => {
      const res = await trx
        .updateTable('feedback_policies')
        .set(values)
        .where('project_id', '=', ctx.projectId)
        .where('model_name', '=', modelName)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0)
        await trx
          .insertInto('feedback_policies')
          .values({ project_id: ctx.projectId, model_name: modelName, ...values })
          .execute();
    });
    return parsed.data;
  }

  /** Retrain policies of the caller's project by model name. */
  async policies(ctx: CallContext): Promise<Record<string, RetrainPolicy>> {
    const rows = await this.o.db.kysely
      .selectFrom('feedback_policies')
      .selectAll()
      .where('project_id', '=', ctx.projectId)
      .orderBy('model_name')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.model_name, JSON.parse(r.policy) as RetrainPolicy]));
  }

  /**
   * Checks every policy of the caller's project and, for each that fires (outside its cool-down),
   * records a proposal and emits `feedback.retrain_proposed`. It never trains or deploys.
   */
  async evaluatePolicies(ctx: CallContext): Promise<RetrainProposal[]> {
    const rows = await this.o.db.kysely
      .selectFrom('feedback_policies')
      .selectAll()
      .where('project_id', '=', ctx.projectId)
      .execute();
    const out: RetrainProposal[] = [];
    const now = this.o.now();
    for (const row of rows) {
      const policy = retrainPolicySchema.safeParse(JSON.parse(row.policy));
      if (!policy.success) {
        this.o.log.warn({ model: row.model_name }, 'stored retrain policy is invalid; set it again');
        continue;
      }
      const p = policy.data;
      const last = await this.o.db.kysely
        .selectFrom('feedback_proposals')
        .select('created_at')
        .where('project_id', '=', ctx.projectId)
        .where('model_name', '=', row.model_name)
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (last !== undefined && now - Number(last.created_at) < p.cooldownHours * HOUR) continue;
      const waiting = await this.o.db.kysely
        .selectFrom('feedback_samples')
        .select('id')
        .where('project_id', '=', ctx.projectId)
        .where('model_name', '=', row.model_name)
        .where('status', '=', 'accepted')
        .where('used_in', 'is', null)
        .orderBy('received_at')
        .limit(10_000)
        .execute();
      let trigger: RetrainProposal['trigger'] | undefined;
      let reason = '';
      if (p.minAcceptedSamples !== undefined && waiting.length >= p.minAcceptedSamples) {
        trigger = 'min_accepted_samples';
        reason = `${waiting.length} accepted feedback sample(s) wait for a dataset version (policy: at least ${p.minAcceptedSamples})`;
      } else if (p.confidenceDropOver !== undefined) {
        const c = p.confidenceDropOver;
        const recent = await this.meanConfidence(ctx.projectId, c.tag, now - c.windowHours * HOUR, now);
        const before = await this.meanConfidence(
          ctx.projectId,
          c.tag,
          now - 2 * c.windowHours * HOUR,
          now - c.windowHours * HOUR,
        );
        if (recent !== null && before !== null && before - recent > c.drop) {
          trigger = 'confidence_drop';
          reason = `mean top confidence on ${c.tag} fell from ${before.toFixed(3)} to ${recent.toFixed(3)} over ${c.windowHours} h (policy: a drop of more than ${c.drop})`;
        }
      }
      if (trigger === undefined) continue;
      const plan = await this.planFor(
        ctx,
        row.model_name,
        p,
        waiting.map((w) => w.id),
        reason,
      );
      if (plan === undefined) continue;
      const proposal: RetrainProposal = {
        id: newId('rp'),
        projectId: ctx.projectId,
        model: row.model_name,
        trigger,
        plan,
        createdAt: now,
      };
      await this.o.db.kysely
        .insertInto('feedback_proposals')
        .values({
          id: proposal.id,
          project_id: ctx.projectId,
          model_name: row.model_name,
          trigger_kind: trigger,
          plan: JSON.stringify(plan),
          created_at: now,
        })
        .execute();
      this.o.log.info({ model: row.model_name, trigger }, 'retrain proposed; waiting for approval');
      this.o.events.emit({ type: 'feedback.retrain_proposed', projectId: ctx.projectId, at: now, proposal });
      out.push(proposal);
    }
    return out;
  }

  /** Proposals made for the caller's project, newest first. */
  async proposals(ctx: CallContext, opts: { limit?: number } = {}): Promise<RetrainProposal[]> {
    const rows = await this.o.db.kysely
      .selectFrom('feedback_proposals')
      .selectAll()
      .where('project_id', '=', ctx.projectId)
      .orderBy('created_at', 'desc')
      .limit(Math.min(Math.max(opts.limit ?? 20, 1), 200))
      .execute();
    return rows.map((r) => ({
      id: r.id,
      projectId: r.project_id,
      model: r.model_name,
      trigger: r.trigger_kind as RetrainProposal['trigger'],
      plan: JSON.parse(r.plan) as RetrainPlan,
      createdAt: Number(r.created_at),
    }));
  }

  private async planFor(
    ctx: CallContext,
    model: string,
    p: RetrainPolicy,
    sampleIds: string[],
    reason: string,
  ): Promise<RetrainPlan | undefined> {
    let dataset = p.dataset;
    let config = p.config ?? null;
    if ((dataset === undefined || config === null) && this.o.models !== undefined) {
      try {
        const latest = await this.o.models.get(ctx, model);
        dataset ??= latest.lineage.datasetName ?? undefined;
        config ??= isRecord(latest.lineage.config) ? latest.lineage.config : null;
      } catch (err) {
        this.o.log.warn(
          { model, err: (err as Error).message },
          'retrain policy: model not found in the registry',
        );
      }
    }
    if (dataset === undefined) {
      this.o.log.warn({ model }, 'retrain policy fired but no dataset is known; set `dataset` in the policy');
      return undefined;
    }
    let from: string | null = null;
    if (this.o.models !== undefined) {
      const production = await this.o.models.get(ctx, `${model}@production`).catch(() => undefined);
      if (production !== undefined) from = `${model}@production`;
    }
    const margin = p.minImprovement;
    const steps = [
      ...(sampleIds.length > 0
        ? [`add the ${sampleIds.length} accepted feedback sample(s) to ${dataset} as a new version`]
        : []),
      `${from === null ? `train ${model} from scratch` : `fine-tune ${model} from ${from}`} on the newest version of ${dataset}${config === null ? '' : ' with the same configuration'}`,
      `evaluate the new version and ${from ?? 'the current one'} on the same test split`,
      `promote it to production and roll it out to the devices that run ${from ?? model} (canary first) only if its mAP50 is higher by at least ${margin}`,
    ];
    return { model, dataset, sampleIds, config, reason, from, minImprovement: margin, steps };
  }

  private async meanConfidence(
    projectId: string,
    tag: string,
    from: number,
    to: number,
  ): Promise<number | null> {
    const row = await this.o.db.kysely
      .selectFrom('feedback_confidence')
      .select((eb) => [eb.fn.sum<number>('conf_sum').as('s'), eb.fn.sum<number>('conf_count').as('n')])
      .where('project_id', '=', projectId)
      .where('tag', '=', tag)
      .where('hour_start', '>=', from)
      .where('hour_start', '<', to)
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    return n > 0 ? Number(row?.s ?? 0) / n : null;
  }

  private async onSample(s: MessagePayload<'feedback.sample'>): Promise<void> {
    const prefix = `feedback/${s.deviceId}/`;
    if (
      !DEVICE_ID.test(s.deviceId) ||
      !s.imageKey.startsWith(prefix) ||
      s.imageKey.length > 191 ||
      s.imageKey.includes('..')
    ) {
      this.o.log.warn(
        { deviceId: s.deviceId.slice(0, 130), imageKey: s.imageKey.slice(0, 200) },
        `feedback sample ignored: its image key must start with ${prefix} (use issueUploadUrls)`,
      );
      return;
    }
    const existing = await this.o.db.kysely
      .selectFrom('feedback_samples')
      .select('id')
      .where('image_key', '=', s.imageKey)
      .executeTakeFirst();
    if (existing !== undefined) return;
    const head = await this.o.storage.head(s.imageKey);
    if (head === undefined) {
      this.o.log.warn(
        { deviceId: s.deviceId, imageKey: s.imageKey },
        'feedback sample ignored: its image was never uploaded',
      );
      return;
    }
    // S3 cannot cap a presigned PUT: an upload over the limit or of another type is dropped here
    if (head.size > this.o.uploadMaxBytes || !(head.contentType ?? '').startsWith('image/')) {
      this.o.log.warn(
        {
          deviceId: s.deviceId,
          imageKey: s.imageKey,
          size: head.size,
          contentType: head.contentType?.slice(0, 100),
        },
        `feedback sample ignored: its image must be a JPEG, PNG or WebP of at most ${this.o.uploadMaxBytes} bytes`,
      );
      await this.o.storage.delete(s.imageKey).catch(() => undefined);
      return;
    }
    if (head.sha256 !== undefined && head.sha256 !== s.sha256) {
      this.o.log.warn(
        { deviceId: s.deviceId, imageKey: s.imageKey },
        'feedback sample ignored: the uploaded image does not match its sha256',
      );
      return;
    }
    const projectId = await this.o.projectOf(s.deviceId);
    const modelName = s.modelVersionId === null ? null : await this.modelName(projectId, s.modelVersionId);
    const now = this.o.now();
    const row: SampleRow = {
      id: newId('fb'),
      project_id: projectId,
      device_id: s.deviceId,
      model_version_id: s.modelVersionId,
      model_name: modelName,
      image_key: s.imageKey,
      sha256: s.sha256,
      width: s.width,
      height: s.height,
      reason: s.reason,
      predictions: JSON.stringify(s.predictions),
      top_confidence: s.predictions.length === 0 ? null : Math.max(...s.predictions.map((p) => p.score)),
      captured_at: s.capturedAt,
      received_at: now,
      status: 'pending',
      boxes: null,
      reject_reason: null,
      reviewed_by: null,
      reviewed_at: null,
      used_in: null,
      used_at: null,
    };
    try {
      await this.o.db.kysely.insertInto('feedback_samples').values(row).execute();
    } catch (err) {
      const again = await this.o.db.kysely
        .selectFrom('feedback_samples')
        .select('id')
        .where('image_key', '=', s.imageKey)
        .executeTakeFirst();
      if (again !== undefined) return;
      throw err;
    }
    this.o.events.emit({ type: 'feedback.received', projectId, at: now, sample: toSample(row) });
  }

  private async onHeartbeat(hb: MessagePayload<'device.heartbeat'>, at: number): Promise<void> {
    if (hb.meanTopConfidence === null || !DEVICE_ID.test(hb.deviceId)) return;
    const projectId = await this.o.projectOf(hb.deviceId);
    const hour = Math.floor(at / HOUR) * HOUR;
    const conf = hb.meanTopConfidence;
    for (const tag of new Set(hb.tags.filter((t) => t.trim() !== '' && t.length <= 100))) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await this.o.db.kysely
          .updateTable('feedback_confidence')
          .set((eb) => ({ conf_sum: eb('conf_sum', '+', conf), conf_count: eb('conf_count', '+', 1) }))
          .where('project_id', '=', projectId)
          .where('tag', '=', tag)
          .where('hour_start', '=', hour)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) > 0) break;
        try {
          await this.o.db.kysely
            .insertInto('feedback_confidence')
            .values({ project_id: projectId, tag, hour_start: hour, conf_sum: conf, conf_count: 1 })
            .execute();
          break;
        } catch (err) {
          // Another consumer created the bucket first; the update on the next attempt counts this one.
          if (attempt === 1) throw err;
        }
      }
    }
  }

  private async modelName(projectId: string, versionId: string): Promise<string | null> {
    if (this.o.models === undefined) return null;
    const cached = this.modelNames.get(versionId);
    if (cached !== undefined) return cached;
    const ctx: CallContext = {
      user: systemPrincipal(),
      projectId,
      requestId: 'feedback-intake',
      log: this.o.log,
    };
    const name = await this.o.models.get(ctx, versionId).then(
      (v) => v.name,
      () => null,
    );
    if (name !== null) this.modelNames.set(versionId, name);
    return name;
  }

  /** The dataset version a call with this idempotency key made (a crash may have left its samples claimed): marks them used in it. */
  private async versionMadeEarlier(
    ctx: CallContext,
  ): Promise<{ ref: string; sampleIds: string[] } | undefined> {
    const earlier = await priorEffect<{ versionId: string }>(this.o.db.kysely, ctx, VERSION_EFFECT);
    if (earlier === undefined) return undefined;
    const v = await this.o.db.kysely
      .selectFrom('dataset_versions')
      .innerJoin('datasets', 'datasets.id', 'dataset_versions.dataset_id')
      .select(['datasets.name', 'dataset_versions.version', 'dataset_versions.lineage'])
      .where('dataset_versions.id', '=', earlier.versionId)
      .where('dataset_versions.project_id', '=', ctx.projectId)
      .executeTakeFirst();
    if (v === undefined) return undefined;
    const ref = `${v.name}@${Number(v.version)}`;
    const sampleIds = (
      (JSON.parse(v.lineage) as { feedbackSampleIds?: string[] }).feedbackSampleIds ?? []
    ).slice();
    if (sampleIds.length > 0) {
      await this.o.db.kysely
        .updateTable('feedback_samples')
        .set({ used_in: ref, used_at: this.o.now() })
        .where('id', 'in', sampleIds)
        .where('used_in', '=', `claim:${ctx.idempotencyKey}`)
        .execute();
    }
    return { ref, sampleIds };
  }

  private async release(claim: string): Promise<void> {
    await this.o.db.kysely
      .updateTable('feedback_samples')
      .set({ used_in: null })
      .where('used_in', '=', claim)
      .execute();
  }

  private async row(projectId: string, sampleId: string): Promise<SampleRow> {
    const row = await this.o.db.kysely
      .selectFrom('feedback_samples')
      .selectAll()
      .where('id', '=', sampleId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    if (row === undefined)
      throw new PlatformError(
        'not_found',
        `feedback sample "${sampleId}" not found; list the queue with status pending`,
      );
    return row;
  }

  private requireOperator(ctx: CallContext, what: string): void {
    if (!roleAtLeast(ctx.user.role, 'operator'))
      throw new PlatformError(
        'forbidden',
        `to ${what} you need the operator role or above; you are ${ctx.user.role}`,
      );
  }
}

/** The device's predictions as reviewed boxes: pixel corners normalised by the frame size and clipped. */
export function predictionsAsBoxes(
  s: Pick<FeedbackSample, 'predictions' | 'width' | 'height'>,
): ReviewedBox[] {
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  return s.predictions
    .map((p) => ({
      className: p.className,
      x1: clip(p.box[0] / s.width),
      y1: clip(p.box[1] / s.height),
      x2: clip(p.box[2] / s.width),
      y2: clip(p.box[3] / s.height),
    }))
    .filter((b) => b.x2 > b.x1 && b.y2 > b.y1);
}

function toSample(r: SampleRow): FeedbackSample {
  return {
    id: r.id,
    projectId: r.project_id,
    deviceId: r.device_id,
    modelVersionId: r.model_version_id,
    modelName: r.model_name,
    imageKey: r.image_key,
    sha256: r.sha256,
    width: Number(r.width),
    height: Number(r.height),
    reason: r.reason,
    predictions: JSON.parse(r.predictions) as FeedbackSample['predictions'],
    topConfidence: r.top_confidence === null ? null : Number(r.top_confidence),
    capturedAt: Number(r.captured_at),
    receivedAt: Number(r.received_at),
    status: r.status,
    boxes: r.boxes === null ? null : (JSON.parse(r.boxes) as ReviewedBox[]),
    rejectReason: r.reject_reason,
    reviewedBy: r.reviewed_by,
    reviewedAt: r.reviewed_at === null ? null : Number(r.reviewed_at),
    usedIn: r.used_in !== null && r.used_in.startsWith('claim:') ? null : r.used_in,
  };
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
