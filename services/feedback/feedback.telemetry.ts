import { DEVICE_ID } from '../fleet/model.js';
import { systemPrincipal, type CallContext } from '../../core/context.js';
import { newId } from '../../core/ids.js';
import { retry } from '../../core/retry.js';
import { parseMessage, type MessagePayload } from '../../protocol/envelope.js';
import { STREAMS, type Broker, type Subscription } from '../infra/broker/port.js';
import type { FeedbackSettings } from './feedback.options.js';
import { toSample, type FeedbackRepository, type SampleRow } from './feedback.repository.js';

const HOUR = 3_600_000;

/** What devices send the feedback loop: `feedback.sample` (into the review queue) and `device.heartbeat` (confidence per tag and hour). */
export class FeedbackTelemetry {
  private readonly modelNames = new Map<string, string | null>();

  constructor(
    private readonly o: FeedbackSettings,
    private readonly repo: FeedbackRepository,
  ) {}

  /** Subscribes to `vision.telemetry` as the single active named consumer `platform-feedback`. */
  start(broker: Broker): Promise<Subscription> {
    return broker.subscribe(
      STREAMS.telemetry,
      { name: 'platform-feedback', singleActive: true, from: 'first' },
      (envelope) => this.handle(envelope),
    );
  }

  /** Applies `feedback.sample` (to the queue) and `device.heartbeat` (confidence per tag); anything invalid is logged and ignored. */
  async handle(message: unknown): Promise<void> {
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
    if (await this.repo.hasImage(s.imageKey)) return;
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
      await this.repo.insertSample(row);
    } catch (err) {
      if (await this.repo.hasImage(s.imageKey)) return;
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
      // A bucket another consumer created first makes the insert fail; the update on the retry counts this one.
      await retry(
        async () => {
          if (await this.repo.addConfidence(projectId, tag, hour, conf)) return;
          await this.repo.insertConfidence(projectId, tag, hour, conf);
        },
        { retries: 1 },
      );
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
}
