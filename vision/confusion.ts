import { iou } from './boxes.js';
import type { GroundTruth, ScoredDetection } from './evaluate.js';

/**
 * A detection confusion matrix: `counts[actual][predicted]` over `classIds` plus a last
 * "background" row and column. A missed ground-truth box counts in its class's row under
 * background; a detection matching no box counts in the background row under its class.
 */
export interface ConfusionMatrix {
  classIds: number[];
  counts: number[][];
}

/** Settings of `confusionMatrix`: the operating score threshold and the IoU a match needs. */
export interface ConfusionOptions {
  scoreThreshold: number;
  iouThreshold: number;
}

/**
 * Builds the confusion matrix of detections at a score threshold, image by image, as Ultralytics
 * does: boxes are matched across classes, highest IoU first, each box at most once. Crowd
 * (difficult) boxes are ignore regions: they take no match and a detection over one is not counted.
 */
export function confusionMatrix(
  groundTruth: readonly GroundTruth[],
  detections: readonly ScoredDetection[],
  classIds: readonly number[],
  opts: ConfusionOptions,
): ConfusionMatrix {
  const n = classIds.length;
  const index = new Map(classIds.map((c, i) => [c, i]));
  const counts = Array.from({ length: n + 1 }, () => new Array<number>(n + 1).fill(0));
  const byImage = new Map<string, { gts: GroundTruth[]; dets: ScoredDetection[] }>();
  const entry = (img: string | number) => {
    const k = `${typeof img}:${String(img)}`;
    return byImage.get(k) ?? byImage.set(k, { gts: [], dets: [] }).get(k)!;
  };
  for (const g of groundTruth) if (index.has(g.classId)) entry(g.imageId).gts.push(g);
  for (const d of detections)
    if (index.has(d.classId) && d.score >= opts.scoreThreshold) entry(d.imageId).dets.push(d);

  for (const { gts, dets } of byImage.values()) {
    const real = gts.filter((g) => !g.iscrowd);
    const crowd = gts.filter((g) => g.iscrowd);
    const pairs: Array<{ g: number; d: number; v: number }> = [];
    real.forEach((g, gi) =>
      dets.forEach((d, di) => {
        const v = iou(d.box, g.box);
        if (v >= opts.iouThreshold) pairs.push({ g: gi, d: di, v });
      }),
    );
    pairs.sort((a, b) => b.v - a.v || a.d - b.d || a.g - b.g);
    const gUsed = new Set<number>();
    const dUsed = new Set<number>();
    for (const p of pairs) {
      if (gUsed.has(p.g) || dUsed.has(p.d)) continue;
      gUsed.add(p.g);
      dUsed.add(p.d);
      counts[index.get(real[p.g]!.classId)!]![index.get(dets[p.d]!.classId)!]! += 1;
    }
    real.forEach((g, gi) => {
      if (!gUsed.has(gi)) counts[index.get(g.classId)!]![n]! += 1;
    });
    dets.forEach((d, di) => {
      if (dUsed.has(di)) return;
      if (crowd.some((g) => iou(d.box, g.box) >= opts.iouThreshold)) return;
      counts[n]![index.get(d.classId)!]! += 1;
    });
  }
  return { classIds: [...classIds], counts };
}
