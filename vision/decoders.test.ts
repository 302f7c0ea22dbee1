import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../core/errors.js';
import {
  decodeEnd2End,
  decodeOutput,
  decodeUltralytics,
  decodeYolox,
  detectLayout,
  gridCount,
} from './decoders.js';
import type { Candidates } from './nms.js';

function rows(c: Candidates): Array<{ box: number[]; score: number; cls: number }> {
  return Array.from({ length: c.count }, (_, i) => ({
    box: [...c.boxes.subarray(i * 4, i * 4 + 4)].map((v) => Math.round(v * 1000) / 1000),
    score: Math.round(c.scores[i]! * 1000) / 1000,
    cls: c.classes[i]!,
  }));
}

describe('gridCount', () => {
  it('sums the grid cells over strides 8/16/32', () => {
    // 640: 80*80 + 40*40 + 20*20 = 6400 + 1600 + 400 = 8400; 64: 64 + 16 + 4 = 84.
    expect(gridCount(640, 640)).toBe(8400);
    expect(gridCount(64, 64)).toBe(84);
  });
});

describe('decodeUltralytics', () => {
  it('decodes [1, 4+nc, N] channel-major cx,cy,w,h + class scores above conf', () => {
    const n = 84;
    const nc = 2;
    const t = new Float32Array((4 + nc) * n);
    const set = (i: number, v: number[]): void => v.forEach((x, r) => (t[r * n + i] = x));
    // Anchor 0: centre (10,20), 4x8 -> [8,16,12,24]; best class 1 at 0.9.
    set(0, [10, 20, 4, 8, 0.1, 0.9]);
    // Anchor 5: centre (40,40), 10x10 -> [35,35,45,45]; best class 0 at 0.3.
    set(5, [40, 40, 10, 10, 0.3, 0.2]);
    // Anchor 9: best score 0.2 < conf 0.25, never decoded.
    set(9, [1, 1, 1, 1, 0.2, 0.1]);
    const out = decodeUltralytics(t, [1, 4 + nc, n], { conf: 0.25 });
    expect(rows(out)).toEqual([
      { box: [8, 16, 12, 24], score: 0.9, cls: 1 },
      { box: [35, 35, 45, 45], score: 0.3, cls: 0 },
    ]);
  });
});

describe('decodeEnd2End', () => {
  it('decodes [1, N, 6] rows of x1,y1,x2,y2,score,class', () => {
    const t = Float32Array.from([1, 2, 3, 4, 0.95, 7, 5, 6, 7, 8, 0.1, 2, 10, 10, 20, 20, 0.5, 0]);
    const out = decodeEnd2End(t, [1, 3, 6], { conf: 0.25 });
    expect(rows(out)).toEqual([
      { box: [1, 2, 3, 4], score: 0.95, cls: 7 },
      { box: [10, 10, 20, 20], score: 0.5, cls: 0 },
    ]);
  });
});

describe('decodeYolox', () => {
  it('grid/stride decodes [1, N, 5+nc] with score = objectness x class', () => {
    const n = 84;
    const k = 7;
    const t = new Float32Array(n * k);
    // Stride 8 grid is 8x8; cell (gx=2, gy=1) is row 1*8+2 = 10.
    // cx = (0.5+2)*8 = 20, cy = (0.25+1)*8 = 10, w = e^ln2 * 8 = 16, h = e^0 * 8 = 8 -> [12,6,28,14];
    // score = 0.8 * max(0.5, 0.9) = 0.72, class 1.
    t.set([0.5, 0.25, Math.log(2), 0, 0.8, 0.5, 0.9], 10 * k);
    // Stride 16 grid is 4x4 after the 64 stride-8 rows; cell (3,1) is row 64 + 4 + 3 = 71.
    // cx = 3*16 = 48, cy = 16, w = h = 16 -> [40,8,56,24]; score = 0.5 * 0.6 = 0.3, class 0.
    t.set([0, 0, 0, 0, 0.5, 0.6, 0.1], 71 * k);
    // Stride 32 row 80: objectness 0.9 but best class 0.2 -> 0.18 < 0.25, dropped.
    t.set([0, 0, 0, 0, 0.9, 0.2, 0.1], 80 * k);
    const out = decodeYolox(t, [1, n, k], { conf: 0.25, inputWidth: 64, inputHeight: 64 });
    expect(rows(out)).toEqual([
      { box: [12, 6, 28, 14], score: 0.72, cls: 1 },
      { box: [40, 8, 56, 24], score: 0.3, cls: 0 },
    ]);
    expect(() => decodeYolox(t, [1, n, k], { conf: 0.25, inputWidth: 32, inputHeight: 32 })).toThrow(
      /\[1, 21, 5\+nc\]/,
    );
  });

  it('dispatches through decodeOutput', () => {
    const t = Float32Array.from([1, 2, 3, 4, 0.95, 7]);
    expect(decodeOutput('end2end', t, [1, 1, 6], { conf: 0.5, inputWidth: 64, inputHeight: 64 }).count).toBe(
      1,
    );
  });
});

describe('detectLayout', () => {
  it('recognises the three layouts when the shape is unambiguous', () => {
    expect(detectLayout([1, 84, 8400], 640)).toEqual({ layout: 'ultralytics', numClasses: 80 });
    expect(detectLayout([1, 7, 2100], 320)).toEqual({ layout: 'ultralytics', numClasses: 3 });
    expect(detectLayout([1, 300, 6], 640)).toEqual({ layout: 'end2end', numClasses: undefined });
    expect(detectLayout([1, 8400, 85], 640)).toEqual({ layout: 'yolox', numClasses: 80 });
    expect(detectLayout([1, 3549, 8], { width: 416, height: 416 })).toEqual({
      layout: 'yolox',
      numClasses: 3,
    });
  });

  it('uses the class count to settle [1, 8400, 6] and throws without it', () => {
    expect(detectLayout([1, 8400, 6], 640, 1)).toEqual({ layout: 'yolox', numClasses: 1 });
    expect(detectLayout([1, 8400, 6], 640, 80).layout).toBe('end2end');
    let err: unknown;
    try {
      detectLayout([1, 8400, 6], 640);
    } catch (e) {
      err = e;
    }
    expect(isPlatformError(err, 'invalid_input')).toBe(true);
    expect((err as Error).message).toMatch(/\[1, 8400, 6\].*--layout/);
  });

  it('throws invalid_input naming the shape for unknown outputs', () => {
    expect(() => detectLayout([1, 7, 13], 640)).toThrow(/\[1, 7, 13\].*--layout/);
    expect(() => detectLayout([1, 2, 3, 4], 640)).toThrow(/rank-3/);
    expect(() => detectLayout([1, 8400, 84], 640, 80)).toThrow(/transposed/);
  });
});
