import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import type { Envelope } from '../services/infra/broker/index.js';
import { makeEnvelope, STREAMS, type StreamName } from '../services/infra/broker/index.js';
import type { Logger } from '../core/log.js';
import { iou, type Detection } from '../vision/index.js';
import type { Frame } from './sources/index.js';

/** Why a frame was sampled. */
export type FeedbackReason = 'low_confidence' | 'disagreement';

/** Feedback settings of an edge runner: rate caps and where signed upload URLs come from. */
export interface FeedbackOptions {
  perMinute: number;
  perHour: number;
  /** Asks the platform for `count` presigned PUT URLs (with the storage key behind each). */
  requestUploadUrls: (count: number) => Promise<Array<{ url: string; key: string }>>;
}

/** Options of `FeedbackSampler`. */
export interface FeedbackSamplerOptions extends FeedbackOptions {
  deviceId: string;
  /** Folder for samples waiting to be uploaded. */
  dir: string;
  /** Top confidence in [low, high) marks a frame uncertain. */
  band: [number, number];
  /** Publishes `feedback.sample` (through the disk-buffered outbox). */
  publish: (stream: StreamName, envelope: Envelope) => Promise<unknown>;
  log: Logger;
  /** Samples kept on disk while uploads fail; the oldest are dropped beyond it (default 200). */
  maxPending?: number;
  /** Boxes of different classes overlapping at least this much disagree (default 0.5). */
  disagreementIou?: number;
  retryMs?: number;
  jpegQuality?: number;
  now?: () => number;
}

const pendingSchema = z.object({
  reason: z.enum(['low_confidence', 'disagreement']),
  modelVersionId: z.string().nullable(),
  sha256: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  capturedAt: z.number().int(),
  predictions: z.array(
    z.object({
      box: z.tuple([z.number(), z.number(), z.number(), z.number()]),
      classId: z.number().int(),
      className: z.string(),
      score: z.number(),
    }),
  ),
});
type Pending = z.infer<typeof pendingSchema>;

/** Decides whether a frame's detections are worth a human look: uncertain top score, or overlapping boxes of different classes. */
export function feedbackReason(
  detections: readonly Detection[],
  band: readonly [number, number],
  disagreementIou = 0.5,
): FeedbackReason | undefined {
  for (let i = 0; i < detections.length; i++) {
    for (let j = i + 1; j < detections.length; j++) {
      const a = detections[i]!;
      const b = detections[j]!;
      if (a.classId !== b.classId && iou(a.box, b.box) >= disagreementIou) return 'disagreement';
    }
  }
  if (detections.length === 0) return undefined;
  const top = Math.max(...detections.map((d) => d.score));
  return top >= band[0] && top < band[1] ? 'low_confidence' : undefined;
}

/**
 * Samples uncertain frames under per-minute and per-hour caps, keeps them as JPEG on disk, uploads
 * them through signed PUT URLs from the platform and announces each as `feedback.sample`.
 * Uploads that fail stay on disk (bounded) and are retried.
 */
export class FeedbackSampler {
  readonly counts = {
    low_confidence: 0,
    disagreement: 0,
    capped: 0,
    uploaded: 0,
    dropped: 0,
    uploadFailures: 0,
  };
  private readonly accepted: number[] = [];
  private readonly pendingDir: string;
  private readonly now: () => number;
  private writes = new Set<Promise<void>>();
  private saveChain: Promise<void> = Promise.resolve();
  private draining: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(private readonly opts: FeedbackSamplerOptions) {
    this.pendingDir = path.join(opts.dir, 'pending');
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    await mkdir(this.pendingDir, { recursive: true });
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all(this.writes);
    await this.draining;
  }

  /** Looks at one inferred frame; when it qualifies and the caps allow, stores it for upload. Returns the reason it was taken. */
  consider(
    frame: Frame,
    detections: readonly Detection[],
    modelVersionId: string | null,
  ): FeedbackReason | undefined {
    const reason = feedbackReason(detections, this.opts.band, this.opts.disagreementIou);
    if (!reason) return undefined;
    const t = this.now();
    while (this.accepted.length > 0 && this.accepted[0]! <= t - 3_600_000) this.accepted.shift();
    const lastMinute = this.accepted.filter((a) => a > t - 60_000).length;
    if (lastMinute >= this.opts.perMinute || this.accepted.length >= this.opts.perHour) {
      this.counts.capped++;
      return undefined;
    }
    this.accepted.push(t);
    this.counts[reason]++;
    // Saves run one after another so the bound on pending samples is applied exactly.
    const w = this.saveChain
      .then(() => this.save(frame, detections, reason, modelVersionId))
      .catch((err: unknown) => {
        this.opts.log.error({ err: (err as Error).message }, 'could not store a feedback sample');
      });
    this.saveChain = w;
    this.writes.add(w);
    void w.finally(() => this.writes.delete(w));
    return reason;
  }

  /** Samples waiting for upload. */
  async pending(): Promise<number> {
    return (await this.list()).length;
  }

  /** Uploads and announces everything pending now (also runs on a timer). */
  async drain(): Promise<void> {
    if (this.draining) return this.draining;
    this.draining = this.drainOnce().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.drain().finally(() => this.schedule(this.opts.retryMs ?? 5000));
    }, delay);
    this.timer.unref();
  }

  private async save(
    frame: Frame,
    detections: readonly Detection[],
    reason: FeedbackReason,
    modelVersionId: string | null,
  ): Promise<void> {
    const { data, width, height, channels } = frame.image;
    const jpeg = await sharp(data, { raw: { width, height, channels } })
      .jpeg({ quality: this.opts.jpegQuality ?? 85 })
      .toBuffer();
    const meta: Pending = {
      reason,
      modelVersionId,
      sha256: createHash('sha256').update(jpeg).digest('hex'),
      width,
      height,
      capturedAt: frame.capturedAt,
      predictions: detections.map((d) => ({
        box: [d.box[0], d.box[1], d.box[2], d.box[3]],
        classId: d.classId,
        className: d.className,
        score: Math.min(1, Math.max(0, d.score)),
      })),
    };
    const id = `${String(frame.capturedAt).padStart(15, '0')}-${randomBytes(4).toString('hex')}`;
    await writeFile(path.join(this.pendingDir, `${id}.jpg`), jpeg);
    await writeFile(path.join(this.pendingDir, `${id}.json`), JSON.stringify(meta));
    const files = await this.list();
    const max = this.opts.maxPending ?? 200;
    for (const old of files.slice(0, Math.max(0, files.length - max))) {
      await this.remove(old);
      this.counts.dropped++;
    }
    if (!this.draining) this.schedule(0);
  }

  private async list(): Promise<string[]> {
    try {
      return (await readdir(this.pendingDir))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5))
        .sort();
    } catch {
      return [];
    }
  }

  private async remove(id: string): Promise<void> {
    await rm(path.join(this.pendingDir, `${id}.json`), { force: true });
    await rm(path.join(this.pendingDir, `${id}.jpg`), { force: true });
  }

  private async drainOnce(): Promise<void> {
    await Promise.all(this.writes);
    for (;;) {
      const ids = (await this.list()).slice(0, 10);
      if (ids.length === 0 || this.stopped) return;
      let urls: Array<{ url: string; key: string }>;
      try {
        urls = await this.opts.requestUploadUrls(ids.length);
      } catch (err) {
        this.counts.uploadFailures++;
        this.opts.log.warn({ err: (err as Error).message }, 'could not get feedback upload URLs; will retry');
        return;
      }
      for (const [i, id] of ids.entries()) {
        const target = urls[i];
        if (!target) return;
        let meta: Pending;
        let jpeg: Buffer;
        try {
          meta = pendingSchema.parse(
            JSON.parse(await readFile(path.join(this.pendingDir, `${id}.json`), 'utf8')),
          );
          jpeg = await readFile(path.join(this.pendingDir, `${id}.jpg`));
        } catch (err) {
          this.opts.log.warn({ id, err: (err as Error).message }, 'dropping an unreadable feedback sample');
          await this.remove(id);
          this.counts.dropped++;
          continue;
        }
        try {
          const res = await fetch(target.url, {
            method: 'PUT',
            body: new Uint8Array(jpeg),
            headers: { 'content-type': 'image/jpeg' },
            signal: AbortSignal.timeout(60_000),
          });
          if (!res.ok)
            throw new Error(`HTTP ${res.status}: ${(await res.text().catch(() => '')).slice(0, 200)}`);
        } catch (err) {
          this.counts.uploadFailures++;
          this.opts.log.warn({ err: (err as Error).message }, 'feedback upload failed; will retry');
          return;
        }
        await this.opts.publish(
          STREAMS.telemetry,
          makeEnvelope(
            'feedback.sample',
            { deviceId: this.opts.deviceId, imageKey: target.key, ...meta },
            { source: `edge-${this.opts.deviceId}` },
          ),
        );
        await this.remove(id);
        this.counts.uploaded++;
      }
    }
  }
}
