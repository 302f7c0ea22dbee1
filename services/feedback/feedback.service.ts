import { DEVICE_ID } from '../fleet/model.js';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { requireRole, roleAtLeast, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import { feedbackSettings, type FeedbackServiceOptions, type FeedbackSettings } from './feedback.options.js';
import { RetrainPolicies } from './feedback.policies.js';
import { FeedbackToDataset } from './feedback.to-dataset.js';
import { FeedbackRepository, toSample, type SampleRow } from './feedback.repository.js';
import { FeedbackTelemetry } from './feedback.telemetry.js';
import type { Broker, Subscription } from '../infra/broker/port.js';
import {
  FEEDBACK_REASONS,
  FEEDBACK_STATUSES,
  FEEDBACK_UPLOAD_TYPES,
  MAX_UPLOADS_PER_CALL,
  retrainPolicySchema,
  reviewSchema,
  type FeedbackReason,
  type FeedbackStatus,
  type FeedbackUploadType,
  type ReviewedBox,
  type FeedbackSample,
  type RetrainProposal,
  type RetrainPolicy,
  type ReviewDecision,
} from './model.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const listSchema = z.object({
  status: z.enum(FEEDBACK_STATUSES).optional(),
  deviceId: z.string().max(128).optional(),
  reason: z.enum(FEEDBACK_REASONS).optional(),
  offset: z.number().int().min(0).default(0),
  limit: z.number().int().min(1).max(500).default(50),
});

export type { FeedbackDatasets, FeedbackModels, FeedbackServiceOptions } from './feedback.options.js';

/**
 * The feedback loop on the platform: samples devices send (idempotent by image key), signed upload
 * URLs for them, a review queue, accepted samples becoming a new dataset version with lineage,
 * confidence per tag over time, and retrain policies that only ever propose.
 */
export class FeedbackService {
  private readonly o: FeedbackSettings;
  private readonly repo: FeedbackRepository;
  private readonly telemetry: FeedbackTelemetry;
  private readonly retrain: RetrainPolicies;
  private readonly intake: FeedbackToDataset;

  constructor(opts: FeedbackServiceOptions) {
    this.o = feedbackSettings(opts);
    this.repo = new FeedbackRepository(this.o.db.kysely);
    this.telemetry = new FeedbackTelemetry(this.o, this.repo);
    this.retrain = new RetrainPolicies(this.o, this.repo);
    this.intake = new FeedbackToDataset(this.o, this.repo);
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
    return this.telemetry.start(broker);
  }

  /** Applies `feedback.sample` (to the queue) and `device.heartbeat` (confidence per tag); anything invalid is logged and ignored. */
  handleTelemetry(message: unknown): Promise<void> {
    return this.telemetry.handle(message);
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
    const { total, rows } = await this.repo.queue(ctx.projectId, f);
    return { total, items: rows.map(toSample) };
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
    requireRole(ctx, 'operator', 'reviewing feedback');
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
    if (!(await this.repo.review(sampleId, { ...set, reviewed_by: ctx.user.userId, reviewed_at: now })))
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
  toDataset(
    ctx: CallContext,
    input: { dataset: string; sampleIds?: string[]; note?: string },
  ): Promise<{ ref: string; sampleIds: string[] }> {
    return this.intake.toDataset(ctx, input);
  }

  /** Counts per reason, status, device and model version, and mean top confidence by day per tag (last `days`, default 7). */
  async summary(ctx: CallContext, opts: { days?: number } = {}) {
    const days = Math.min(Math.max(Math.floor(opts.days ?? 7), 1), 90);
    const group = (col: 'reason' | 'status' | 'device_id' | 'model_version_id') =>
      this.repo.countBy(ctx.projectId, col);
    const since = Math.floor((this.o.now() - days * DAY) / DAY) * DAY;
    const buckets = await this.repo.confidenceSince(ctx.projectId, since);
    const byDay = new Map<string, { day: string; tag: string; sum: number; count: number }>();
    for (const b of buckets) {
      const day = new Date(Number(b.hour_start)).toISOString().slice(0, 10);
      const key = `${day}\u0000${b.tag}`;
      const e = byDay.get(key) ?? { day, tag: b.tag, sum: 0, count: 0 };
      e.sum += Number(b.conf_sum);
      e.count += Number(b.conf_count);
      byDay.set(key, e);
    }
    const waiting = await this.repo.countAcceptedUnused(ctx.projectId);
    return {
      byReason: await group('reason'),
      byStatus: await group('status'),
      byDevice: await group('device_id'),
      byModelVersion: await group('model_version_id'),
      acceptedNotInDataset: waiting,
      meanConfidenceByDay: [...byDay.values()]
        .sort((a, b) => a.day.localeCompare(b.day) || a.tag.localeCompare(b.tag))
        .map((e) => ({ day: e.day, tag: e.tag, meanTopConfidence: e.sum / e.count, heartbeats: e.count })),
    };
  }

  /** Sets (replaces) the retrain policy of a model. */
  setPolicy(
    ctx: CallContext,
    modelName: string,
    policy: z.input<typeof retrainPolicySchema>,
  ): Promise<RetrainPolicy> {
    return this.retrain.set(ctx, modelName, policy);
  }

  /** Retrain policies of the caller's project by model name. */
  policies(ctx: CallContext): Promise<Record<string, RetrainPolicy>> {
    return this.retrain.list(ctx);
  }

  /**
   * Checks every policy of the caller's project and, for each that fires (outside its cool-down),
   * records a proposal and emits `feedback.retrain_proposed`. It never trains or deploys.
   */
  evaluatePolicies(ctx: CallContext): Promise<RetrainProposal[]> {
    return this.retrain.evaluate(ctx);
  }

  /** Proposals made for the caller's project, newest first. */
  proposals(ctx: CallContext, opts: { limit?: number } = {}): Promise<RetrainProposal[]> {
    return this.retrain.proposals(ctx, opts);
  }

  private async row(projectId: string, sampleId: string): Promise<SampleRow> {
    const row = await this.repo.sample(projectId, sampleId);
    if (row === undefined)
      throw new PlatformError(
        'not_found',
        `feedback sample "${sampleId}" not found; list the queue with status pending`,
      );
    return row;
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
