import { describe, expect, it } from 'vitest';
import { iou, type Box } from './boxes.js';
import { nms, type Candidates } from './nms.js';
import { mulberry32 } from './synthetic.js';

function randomCandidates(n: number, classes: number, seed: number): Candidates {
  const rng = mulberry32(seed);
  const boxes = new Float32Array(n * 4);
  const scores = new Float32Array(n);
  const cls = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const w = 10 + rng() * 80;
    const h = 10 + rng() * 80;
    const x = rng() * 560;
    const y = rng() * 560;
    boxes.set([x, y, x + w, y + h], i * 4);
    scores[i] = rng();
    cls[i] = Math.floor(rng() * classes);
  }
  return { boxes, scores, classes: cls, count: n };
}

// Textbook greedy NMS: repeatedly take the best remaining box, drop same-class boxes overlapping it.
function naiveNms(c: Candidates, iouThreshold: number, maxDet: number): number[] {
  const box = (i: number): Box => [
    c.boxes[i * 4]!,
    c.boxes[i * 4 + 1]!,
    c.boxes[i * 4 + 2]!,
    c.boxes[i * 4 + 3]!,
  ];
  const order = Array.from({ length: c.count }, (_, i) => i).sort(
    (a, b) => c.scores[b]! - c.scores[a]! || a - b,
  );
  const removed = new Set<number>();
  const keep: number[] = [];
  for (const i of order) {
    if (removed.has(i)) continue;
    keep.push(i);
    if (keep.length === maxDet) break;
    for (const j of order)
      if (j !== i && c.classes[j] === c.classes[i] && iou(box(i), box(j)) > iouThreshold) removed.add(j);
  }
  return keep;
}

describe('nms', () => {
  it('keeps the best box of an overlapping pair, but not across classes', () => {
    const c: Candidates = {
      // Box 1 overlaps box 0 with IoU 90/110 = 0.82 (same class, dropped); box 2 is the same place but class 1 (kept).
      boxes: Float32Array.from([0, 0, 10, 10, 1, 0, 10, 10, 0, 0, 10, 10, 50, 50, 60, 60]),
      scores: Float32Array.from([0.9, 0.8, 0.7, 0.6]),
      classes: Int32Array.from([0, 0, 1, 0]),
      count: 4,
    };
    expect([...nms(c, { iouThreshold: 0.5 })]).toEqual([0, 2, 3]);
    expect([...nms(c, { iouThreshold: 0.5, agnostic: true })]).toEqual([0, 3]);
    expect([...nms(c, { iouThreshold: 0.5, maxDet: 2 })]).toEqual([0, 2]);
    expect(nms({ ...c, count: 0 }).length).toBe(0);
  });

  it('breaks score ties by index and orders negative or NaN scores last', () => {
    const c: Candidates = {
      boxes: Float32Array.from([0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21, 30, 30, 31, 31, 40, 40, 41, 41]),
      scores: Float32Array.from([0.5, -1, 0.5, Number.NaN, 0.7]),
      classes: Int32Array.from([0, 0, 0, 0, 0]),
      count: 5,
    };
    expect([...nms(c)]).toEqual([4, 0, 2, 1, 3]);
  });

  it('matches a naive reference on 2,000 random candidates', () => {
    const c = randomCandidates(2000, 3, 7);
    expect([...nms(c, { iouThreshold: 0.45, maxDet: 10_000 })]).toEqual(naiveNms(c, 0.45, 10_000));
    expect([...nms(c, { iouThreshold: 0.7, maxDet: 100 })]).toEqual(naiveNms(c, 0.7, 100));
  });

  it('handles 10,000 candidates quickly and agrees with the reference', () => {
    const c = randomCandidates(10_000, 80, 11);
    const t0 = performance.now();
    const fast = nms(c, { iouThreshold: 0.45, maxDet: 300 });
    const ms = performance.now() - t0;
    expect([...fast]).toEqual(naiveNms(c, 0.45, 300));
    // Typically ~3 ms here; the bound is loose so a busy CI machine does not flake.
    expect(ms).toBeLessThan(250);
    const single = randomCandidates(10_000, 1, 12);
    const t1 = performance.now();
    const keptSingle = nms(single, { iouThreshold: 0.45, maxDet: 300 });
    expect(performance.now() - t1).toBeLessThan(250);
    expect(keptSingle.length).toBe(300);
  });
});
