import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../services/infra/broker/index.js';
import { silentLogger } from '../core/log.js';
import type { Detection } from '../vision/index.js';
import { FeedbackSampler, feedbackReason } from './feedback.js';
import type { Frame } from './sources/index.js';

const det = (score: number, classId = 0, box: Detection['box'] = [10, 10, 30, 30]): Detection => ({
  box,
  classId,
  className: `c${classId}`,
  score,
});
const frame: Frame = {
  image: { data: new Uint8Array(16 * 16 * 3).fill(90), width: 16, height: 16, channels: 3 },
  capturedAt: 1,
  seq: 0,
};

describe(feedbackReason.name, () => {
  it('flags an uncertain top score and overlapping boxes of different classes', () => {
    expect(feedbackReason([det(0.3)], [0.25, 0.5])).toBe('low_confidence');
    expect(feedbackReason([det(0.3), det(0.9, 0, [100, 100, 120, 120])], [0.25, 0.5])).toBeUndefined();
    expect(feedbackReason([det(0.5)], [0.25, 0.5])).toBeUndefined();
    expect(feedbackReason([], [0.25, 0.5])).toBeUndefined();
    expect(feedbackReason([det(0.9, 0), det(0.8, 1, [11, 11, 31, 31])], [0.25, 0.5])).toBe('disagreement');
    expect(feedbackReason([det(0.9, 0), det(0.8, 1, [25, 25, 60, 60])], [0.25, 0.5])).toBeUndefined();
  });
});

describe(FeedbackSampler.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'edge-feedback-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('respects the per-minute and per-hour caps', async () => {
    let now = 0;
    const published: Envelope[] = [];
    const sampler = new FeedbackSampler({
      deviceId: 'd1',
      dir,
      band: [0.25, 0.5],
      perMinute: 2,
      perHour: 5,
      requestUploadUrls: async () => [],
      publish: async (_s, e) => published.push(e),
      log: silentLogger(),
      now: () => now,
    });
    const take = (n: number) =>
      Array.from({ length: n }, () => sampler.consider(frame, [det(0.3)], 'mv')).filter(Boolean).length;
    expect(take(10)).toBe(2);
    now += 30_000;
    expect(take(10)).toBe(0);
    now += 31_000;
    expect(take(10)).toBe(2);
    now += 61_000;
    expect(take(10)).toBe(1);
    now += 61_000;
    expect(take(10)).toBe(0);
    expect(sampler.counts.low_confidence).toBe(5);
    expect(sampler.counts.capped).toBe(45);
    now += 3_600_000;
    expect(take(10)).toBe(2);
    await sampler.stop();
  });

  it('keeps samples on disk while uploads fail and uploads them later', async () => {
    let fail = true;
    const published: Envelope[] = [];
    const sampler = new FeedbackSampler({
      deviceId: 'd1',
      dir,
      band: [0.25, 0.5],
      perMinute: 10,
      perHour: 10,
      retryMs: 50,
      maxPending: 2,
      requestUploadUrls: async (n) => {
        if (fail) throw new Error('platform unreachable');
        return Array.from({ length: n }, (_, i) => ({ url: `data:,${i}`, key: `feedback/d1/${i}.jpg` }));
      },
      publish: async (_s, e) => published.push(e),
      log: silentLogger(),
    });
    await sampler.start();
    for (let i = 0; i < 3; i++) sampler.consider({ ...frame, capturedAt: 10 + i }, [det(0.3)], 'mv');
    await expect.poll(() => sampler.counts.uploadFailures).toBeGreaterThan(0);
    await expect.poll(() => sampler.pending()).toBe(2);
    expect(sampler.counts.dropped).toBe(1);
    fail = false;
    await expect.poll(() => published.length, { timeout: 5000 }).toBe(2);
    expect(published.map((e) => (e.payload as { capturedAt: number }).capturedAt)).toEqual([11, 12]);
    expect(await sampler.pending()).toBe(0);
    await sampler.stop();
  });
});
