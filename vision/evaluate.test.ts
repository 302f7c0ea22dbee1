import { describe, expect, it } from 'vitest';
import {
  evaluateDetections,
  IOU_THRESHOLDS,
  RECALL_THRESHOLDS,
  type GroundTruth,
  type ScoredDetection,
} from './evaluate.js';

describe('evaluateDetections', () => {
  it('uses the pycocotools threshold grids', () => {
    expect(IOU_THRESHOLDS).toHaveLength(10);
    expect(IOU_THRESHOLDS[0]).toBe(0.5);
    expect(IOU_THRESHOLDS[9]).toBe(0.95);
    expect(RECALL_THRESHOLDS).toHaveLength(101);
    expect(RECALL_THRESHOLDS[50]).toBe(0.5);
  });

  it('interpolates precision at 101 recall points', () => {
    const gts: GroundTruth[] = [
      { imageId: 'a', classId: 0, box: [0, 0, 10, 10] },
      { imageId: 'a', classId: 0, box: [20, 20, 30, 30] },
    ];
    const dets: ScoredDetection[] = [
      { imageId: 'a', classId: 0, box: [0, 0, 10, 10], score: 0.9 },
      { imageId: 'a', classId: 0, box: [50, 50, 60, 60], score: 0.8 },
      { imageId: 'a', classId: 0, box: [20, 20, 30, 30], score: 0.7 },
    ];
    // By score: TP (rc .5, pr 1), FP (rc .5, pr .5), TP (rc 1, pr 2/3). Envelope: [1, 2/3, 2/3].
    // Recall points 0.00..0.50 (51 of them) read pr 1; 0.51..1.00 (50) read 2/3.
    // AP = (51 * 1 + 50 * 2/3) / 101 = 84.333.../101 = 0.83498...; boxes are exact so every IoU threshold agrees.
    const r = evaluateDetections(gts, dets, { scoreThreshold: 0.75 });
    expect(r.map50).toBeCloseTo((51 + (50 * 2) / 3) / 101, 10);
    expect(r.map5095).toBeCloseTo((51 + (50 * 2) / 3) / 101, 10);
    // At score >= 0.75 only the first two count: 1 TP, 1 FP -> precision 1/2; recall 1 of 2 GTs = 1/2.
    expect(r.precision).toBe(0.5);
    expect(r.recall).toBe(0.5);
    expect(r.perClass[0]).toMatchObject({ classId: 0, numGt: 2, numDet: 3 });
  });

  it('keeps the IoU 0.5 precision-recall curve whose mean is AP50', () => {
    // the case above: the envelope reads 1 at recall 0.00..0.50 and 2/3 at 0.51..1.00
    const r = evaluateDetections(
      [
        { imageId: 'a', classId: 0, box: [0, 0, 10, 10] },
        { imageId: 'a', classId: 0, box: [20, 20, 30, 30] },
        { imageId: 'a', classId: 5, box: [0, 0, 5, 5] },
      ],
      [
        { imageId: 'a', classId: 0, box: [0, 0, 10, 10], score: 0.9 },
        { imageId: 'a', classId: 0, box: [50, 50, 60, 60], score: 0.8 },
        { imageId: 'a', classId: 0, box: [20, 20, 30, 30], score: 0.7 },
      ],
      { classIds: [0, 5, 7] },
    );
    const curve = r.perClass[0]!.pr50;
    expect(curve).toHaveLength(101);
    expect(curve.slice(0, 51).every((p) => Math.abs(p - 1) < 1e-12)).toBe(true);
    expect(curve.slice(51).every((p) => Math.abs(p - 2 / 3) < 1e-12)).toBe(true);
    // a class never detected reads 0 everywhere; a class without ground truth has no curve
    expect(r.perClass[1]!.pr50).toEqual(new Array(101).fill(0));
    expect(r.perClass[2]!.pr50).toEqual([]);
  });

  it('averages over IoU thresholds 0.50:0.05:0.95', () => {
    // IoU = (10*7.3)/(10*10) = 0.73: a match at .50 .55 .60 .65 .70 (AP 1), a miss at .75 .. .95 (AP 0).
    // mAP@0.5 = 1; mAP@0.5:0.95 = 5/10 = 0.5.
    const r = evaluateDetections(
      [{ imageId: 1, classId: 0, box: [0, 0, 10, 10] }],
      [{ imageId: 1, classId: 0, box: [0, 0, 10, 7.3], score: 0.6 }],
    );
    expect(r.map50).toBeCloseTo(1, 12);
    expect(r.map5095).toBeCloseTo(0.5, 12);
  });

  it('matches greedily by score, as pycocotools does', () => {
    // One GT; d1 (score .9) has IoU .62, d2 (score .8) has IoU .92.
    // t in {.50,.55,.60}: d1 takes the GT, d2 is a FP -> TP then FP -> AP 1.
    // t in {.65,...,.90} (6 values): d1 misses (FP first, pr 0), d2 matches (rc 1, pr 1/2) -> envelope .5 -> AP .5.
    // t = .95: nothing matches -> AP 0.  mAP@0.5:0.95 = (3*1 + 6*0.5 + 0) / 10 = 0.6.
    const r = evaluateDetections(
      [{ imageId: 'x', classId: 3, box: [0, 0, 10, 10] }],
      [
        { imageId: 'x', classId: 3, box: [0, 0, 10, 6.2], score: 0.9 },
        { imageId: 'x', classId: 3, box: [0, 0, 10, 9.2], score: 0.8 },
      ],
    );
    expect(r.map50).toBeCloseTo(1, 12);
    expect(r.map5095).toBeCloseTo(0.6, 12);
  });

  it('reports per-class AP, excludes classes without ground truth and scores missed classes 0', () => {
    const r = evaluateDetections(
      [
        { imageId: 1, classId: 0, box: [0, 0, 10, 10] },
        { imageId: 1, classId: 1, box: [30, 30, 40, 40] },
      ],
      [
        { imageId: 1, classId: 0, box: [0, 0, 10, 10], score: 0.9 },
        { imageId: 1, classId: 2, box: [30, 30, 40, 40], score: 0.9 },
      ],
    );
    // Class 0: AP 1. Class 1: GT, no detection: AP 0. Class 2: no GT: AP -1, left out. mAP = (1 + 0) / 2.
    // pycocotools divides by tp + fp + eps, so a perfect class scores 1 - 2e-16 there too.
    expect(r.perClass.map((c) => [c.classId, Math.round(c.ap50 * 1e9) / 1e9])).toEqual([
      [0, 1],
      [1, 0],
      [2, -1],
    ]);
    expect(r.map50).toBeCloseTo(0.5, 12);
    // At 0.25: TP 1 (class 0), FP 1 (class 2) -> precision 1/2; recall 1 of 2 GTs.
    expect(r.precision).toBe(0.5);
    expect(r.recall).toBe(0.5);
  });

  it('ignores detections matched to crowd regions', () => {
    // The first detection lies inside a crowd box (crowd IoU = intersection / detection area = 1): ignored, not a FP.
    // The second matches the normal GT: AP 1. Without the crowd rule it would be FP then TP: AP 0.5.
    const r = evaluateDetections(
      [
        { imageId: 1, classId: 0, box: [0, 0, 100, 100], iscrowd: true },
        { imageId: 1, classId: 0, box: [200, 200, 210, 210] },
      ],
      [
        { imageId: 1, classId: 0, box: [10, 10, 20, 20], score: 0.9 },
        { imageId: 1, classId: 0, box: [200, 200, 210, 210], score: 0.5 },
      ],
    );
    expect(r.map50).toBeCloseTo(1, 12);
    expect(r.perClass[0]!.numGt).toBe(1);
  });

  it('keeps only the top maxDets detections per image and class', () => {
    const gts: GroundTruth[] = [0, 1, 2].map((i) => ({
      imageId: 1,
      classId: 0,
      box: [i * 20, 0, i * 20 + 10, 10],
    }));
    const dets: ScoredDetection[] = gts.map((g, i) => ({ ...g, score: 0.9 - i * 0.1 }));
    // With maxDets 2 only two TPs remain: recall reaches 2/3, so recall points 0.00..0.66 (67) read 1 -> AP 67/101.
    expect(evaluateDetections(gts, dets, { maxDets: 2 }).map50).toBeCloseTo(67 / 101, 12);
    expect(evaluateDetections(gts, dets).map50).toBeCloseTo(1, 12);
  });
});
