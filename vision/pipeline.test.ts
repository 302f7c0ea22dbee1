import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPlatformError } from '../core/errors.js';
import { buildFixedOutputModel } from './onnx.fixtures.js';
import { loadDetector, type Detection } from './pipeline.js';

let dir: string;
let ultralytics: { path: string; bytes: Buffer };
let end2end: { path: string; bytes: Buffer };
let yolox: { path: string; bytes: Buffer };
let unknown: { path: string; bytes: Buffer };

const frame = { data: new Uint8Array(640 * 480 * 3).fill(90), width: 640, height: 480, channels: 3 as const };

function round(d: Detection[]): Array<{ box: number[]; className: string; classId: number; score: number }> {
  return d.map((x) => ({
    ...x,
    box: x.box.map((v) => Math.round(v * 100) / 100),
    score: Math.round(x.score * 1000) / 1000,
  }));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vision-pipeline-'));
  // Ultralytics layout at 320: [1, 4+3, 2100], channel-major.
  const n = 2100;
  const u = new Float32Array(7 * n);
  const put = (i: number, v: number[]): void => v.forEach((x, r) => (u[r * n + i] = x));
  put(0, [100, 115, 100, 50, 0.9, 0, 0]); // A: helmet 0.9
  put(1, [102, 115, 100, 50, 0.8, 0, 0]); // B: overlaps A (IoU ~0.96), same class -> suppressed
  put(2, [100, 115, 100, 50, 0, 0, 0.7]); // C: same place as A but vest -> kept
  put(3, [200, 200, 40, 40, 0, 0.2, 0]); // D: below conf 0.25
  put(4, [300, 270, 40, 40, 0, 0.6, 0]); // E: reaches into the bottom padding
  [ultralytics, end2end, yolox, unknown] = await Promise.all([
    buildFixedOutputModel(
      {
        inputShape: [1, 3, 320, 320],
        outputShape: [1, 7, n],
        output: u,
        metadata: {
          names: "{0: 'helmet', 1: 'head', 2: 'vest'}",
          imgsz: '[320, 320]',
          layout: 'ultralytics',
          stride: '32',
        },
      },
      dir,
    ),
    buildFixedOutputModel(
      {
        inputShape: [1, 3, 'height', 'width'],
        outputShape: [1, 2, 6],
        output: [50, 90, 150, 140, 0.95, 4, 0, 0, 10, 10, 0.1, 1],
        metadata: { imgsz: '320', names: '["a","b","c","d","e"]' },
      },
      dir,
    ),
    (() => {
      // YOLOX at 64: [1, 84, 5+2]; stride-8 cell (gx=2, gy=1) is row 10: cx 20, cy 10, 16x8 -> [12,6,28,14], score 0.8*0.9.
      const t = new Float32Array(84 * 7);
      t.set([0.5, 0.25, Math.log(2), 0, 0.8, 0.5, 0.9], 70);
      return buildFixedOutputModel({ inputShape: [1, 3, 64, 64], outputShape: [1, 84, 7], output: t }, dir);
    })(),
    buildFixedOutputModel(
      { inputShape: [1, 3, 64, 64], outputShape: [1, 7, 13], output: new Float32Array(91) },
      dir,
    ),
  ]);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadDetector', () => {
  it('runs an Ultralytics-layout model end to end: decode, class-aware NMS, boxes in original pixels', async () => {
    const det = await loadDetector(ultralytics.path);
    expect(det.layout).toBe('ultralytics');
    expect(det.names).toEqual(['helmet', 'head', 'vest']);
    expect([det.inputWidth, det.inputHeight]).toEqual([320, 320]);
    expect(det.outputShapes).toEqual({ output0: [1, 7, 2100] });
    // 640x480 -> 320: scale 0.5, padY 40. A [50,90,150,140] -> [100,100,300,200];
    // E [280,250,320,290] -> [560,420,640,500] clipped to the 480-high image.
    const expected = [
      { box: [100, 100, 300, 200], classId: 0, className: 'helmet', score: 0.9 },
      { box: [100, 100, 300, 200], classId: 2, className: 'vest', score: 0.7 },
      { box: [560, 420, 640, 480], classId: 1, className: 'head', score: 0.6 },
    ];
    expect(round(await det.detect(frame))).toEqual(expected);
    const png = await sharp(frame.data, { raw: { width: 640, height: 480, channels: 3 } })
      .png()
      .toBuffer();
    expect(round(await det.detect(png))).toEqual(expected);
    expect(round(await det.detect(frame, { conf: 0.65 }))).toEqual(expected.slice(0, 2));
    expect(await det.detect(frame, { maxDet: 1 })).toHaveLength(1);
    // A loose IoU threshold lets the shifted duplicate B through.
    expect(await det.detect(frame, { iou: 0.99 })).toHaveLength(4);
    await det.dispose();
  });

  it('accepts model bytes and class names overriding the metadata', async () => {
    const det = await loadDetector(ultralytics.bytes, { names: ['x', 'y', 'z'] });
    expect((await det.detect(frame)).map((d) => d.className)).toEqual(['x', 'z', 'y']);
    await det.dispose();
  });

  it('runs end-to-end [1, N, 6] models without NMS, taking the input size from imgsz metadata', async () => {
    const det = await loadDetector(end2end.path);
    expect(det.layout).toBe('end2end');
    expect([det.inputWidth, det.inputHeight]).toEqual([320, 320]);
    expect(round(await det.detect(frame))).toEqual([
      { box: [100, 100, 300, 200], classId: 4, className: 'e', score: 0.95 },
    ]);
    await det.dispose();
  });

  it('runs YOLOX [1, N, 5+nc] models with grid decoding', async () => {
    const det = await loadDetector(yolox.path);
    expect(det.layout).toBe('yolox');
    expect(det.names).toEqual(['class0', 'class1']);
    const small = { data: new Uint8Array(64 * 64 * 3), width: 64, height: 64, channels: 3 as const };
    expect(round(await det.detect(small))).toEqual([
      { box: [12, 6, 28, 14], classId: 1, className: 'class1', score: 0.72 },
    ]);
    await det.dispose();
  });

  it('feeds Ultralytics models RGB 0..1 and YOLOX models BGR 0..255, letterboxed with grey 114', async () => {
    // Input 32: 16 + 4 + 1 = 21 cells. The score of anchor 0 is the mean of input channel 0 (times a scale).
    // A 64x32 frame letterboxes to 32x16 content with 8 padding rows above and below:
    // channel-0 mean = (16 rows x v + 16 rows x 114) / 32 = (v + 114) / 2.
    const u = new Float32Array(5 * 21);
    const mask = new Float32Array(5 * 21);
    [16, 16, 8, 8].forEach((v, r) => (u[r * 21] = v));
    mask[4 * 21] = 1;
    const ultra = await buildFixedOutputModel(
      { inputShape: [1, 3, 32, 32], outputShape: [1, 5, 21], output: u, channel0Mask: mask },
      dir,
    );
    const y = new Float32Array(21 * 6);
    const ymask = new Float32Array(21 * 6);
    y.set([0, 0, 0, 0, 0, 1], 0);
    ymask[4] = 1;
    const yx = await buildFixedOutputModel(
      {
        inputShape: [1, 3, 32, 32],
        outputShape: [1, 21, 6],
        output: y,
        channel0Mask: ymask,
        channel0Scale: 1 / 255,
      },
      dir,
    );
    const frame64x32 = { data: new Uint8Array(64 * 32 * 3), width: 64, height: 32, channels: 3 as const };
    for (let i = 0; i < 64 * 32; i++) frame64x32.data.set([200, 10, 30], i * 3);
    // Ultralytics sees R/255 in channel 0: (200 + 114) / 2 / 255 = 0.6157.
    const u1 = await loadDetector(ultra.bytes, { layout: 'ultralytics' });
    expect((await u1.detect(frame64x32, { conf: 0.01 }))[0]!.score).toBeCloseTo((200 + 114) / 2 / 255, 3);
    await u1.dispose();
    // YOLOX sees B in 0..255 in channel 0, scaled by 1/255 in the graph: (30 + 114) / 2 / 255 = 0.2824; class prob 1.
    const y1 = await loadDetector(yx.bytes, { layout: 'yolox' });
    expect((await y1.detect(frame64x32, { conf: 0.01 }))[0]!.score).toBeCloseTo((30 + 114) / 2 / 255, 3);
    await y1.dispose();
  });

  it('says a file is not ONNX', async () => {
    for (const bytes of [
      Buffer.from('hello, this is not a model'),
      await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } })
        .png()
        .toBuffer(),
    ]) {
      const err = await loadDetector(bytes).catch((e: unknown) => e);
      expect(isPlatformError(err, 'invalid_input')).toBe(true);
      expect((err as Error).message).toMatch(/not an ONNX model/);
    }
    const missing = await loadDetector(path.join(dir, 'nope.onnx')).catch((e: unknown) => e);
    expect(isPlatformError(missing, 'not_found')).toBe(true);
  });

  it('says which output shapes it saw when they match no layout', async () => {
    const err = await loadDetector(unknown.path).catch((e: unknown) => e);
    expect(isPlatformError(err, 'invalid_input')).toBe(true);
    expect((err as Error).message).toMatch(/output0 \[1, 7, 13\]/);
    expect((err as Error).message).toMatch(/--layout/);
    const forced = await loadDetector(ultralytics.path, { layout: 'end2end' }).catch((e: unknown) => e);
    expect(isPlatformError(forced, 'invalid_input')).toBe(true);
    expect((forced as Error).message).toMatch(
      /expects an output of shape \[1, N, 6\] but the model gives \[1, 7, 2100\]/,
    );
  });
});
