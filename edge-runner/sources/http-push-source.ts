import express, { Router } from 'express';
import { isPlatformError } from '../../core/errors.js';
import { DEFAULT_MAX_IMAGE_PIXELS, decodeImage } from '../../vision/index.js';
import type { Frame, FrameSource } from './frame-source.js';

/** Options of `HttpPushSource`. */
export interface HttpPushSourceOptions {
  /** Frames waiting for the consumer; older ones are dropped beyond this (default 2). */
  queueSize?: number;
  /** Largest accepted image body (default 25 MiB). */
  maxBytes?: number;
  /** Largest image (width x height) decoded; bigger ones are refused from their header (default `DEFAULT_MAX_IMAGE_PIXELS`). */
  maxPixels?: number;
}

/** Frames pushed by a line integration: `POST /frames` with image bytes (JPEG/PNG/WebP) on the device API, or `push()` in process. */
export class HttpPushSource implements FrameSource {
  readonly kind = 'http' as const;
  readonly description = 'http push (POST /frames)';
  private readonly queue: Frame[] = [];
  private readonly waiters: Array<(f: Frame | undefined) => void> = [];
  private seq = 0;
  private closed = false;
  private droppedFrames = 0;
  private readonly queueSize: number;

  constructor(private readonly opts: HttpPushSourceOptions = {}) {
    this.queueSize = Math.max(1, opts.queueSize ?? 2);
  }

  get dropped(): number {
    return this.droppedFrames;
  }

  /** Decodes and enqueues one encoded image; returns its sequence number. */
  async push(encoded: Buffer, label?: string): Promise<number> {
    const image = await decodeImage(encoded, { maxPixels: this.opts.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS });
    const frame: Frame = {
      image,
      capturedAt: Date.now(),
      seq: this.seq++,
      ...(label === undefined ? {} : { label }),
    };
    const waiter = this.waiters.shift();
    if (waiter) waiter(frame);
    else {
      this.queue.push(frame);
      while (this.queue.length > this.queueSize) {
        this.queue.shift();
        this.droppedFrames++;
      }
    }
    return frame.seq;
  }

  async next(): Promise<Frame | undefined> {
    if (this.closed) return undefined;
    const queued = this.queue.shift();
    if (queued) return queued;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w(undefined);
    this.queue.length = 0;
  }

  /** Express routes: `POST /frames` (body = image bytes) → 202 `{ seq }`. */
  router(): Router {
    const router = Router();
    router.post(
      '/frames',
      express.raw({ type: () => true, limit: this.opts.maxBytes ?? 25 * 1024 * 1024 }),
      async (req, res) => {
        const body = req.body as unknown;
        if (!Buffer.isBuffer(body) || body.length === 0) {
          res.status(400).json({
            error: {
              code: 'invalid_input',
              message: 'POST /frames needs the image bytes as the request body (JPEG, PNG or WebP)',
            },
          });
          return;
        }
        if (this.closed) {
          res.status(503).json({
            error: {
              code: 'unavailable',
              message: 'the frame source is closed; the edge runner is stopping',
            },
          });
          return;
        }
        try {
          const seq = await this.push(body, `http:${req.ip ?? 'unknown'}`);
          res.status(202).json({ seq });
        } catch (err) {
          const code = isPlatformError(err) ? err.code : 'internal';
          res
            .status(code === 'invalid_input' ? 400 : 500)
            .json({ error: { code, message: (err as Error).message } });
        }
      },
    );
    return router;
  }
}
