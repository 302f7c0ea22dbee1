import { describe, expect, it } from 'vitest';
import { confusionMatrix } from './confusion.js';
import type { GroundTruth, ScoredDetection } from './evaluate.js';

describe('confusionMatrix', () => {
  it('counts matches across classes, misses and false alarms at the score threshold', () => {
    const gts: GroundTruth[] = [
      { imageId: 'a', classId: 0, box: [0, 0, 10, 10] },
      { imageId: 'a', classId: 1, box: [20, 20, 30, 30] },
      { imageId: 'a', classId: 1, box: [40, 40, 50, 50] },
      { imageId: 'b', classId: 0, box: [0, 0, 10, 10], iscrowd: true },
    ];
    const dets: ScoredDetection[] = [
      { imageId: 'a', classId: 0, box: [0, 0, 10, 10], score: 0.9 }, // right: [0][0]
      { imageId: 'a', classId: 0, box: [20, 20, 30, 30], score: 0.8 }, // a 1 called 0: [1][0]
      { imageId: 'a', classId: 1, box: [70, 70, 80, 80], score: 0.7 }, // nothing there: [bg][1]
      { imageId: 'a', classId: 1, box: [40, 40, 50, 50], score: 0.1 }, // below 0.25: the 1 at 40 is missed: [1][bg]
      { imageId: 'b', classId: 0, box: [0, 0, 10, 10], score: 0.9 }, // over a crowd box: not counted
    ];
    const m = confusionMatrix(gts, dets, [0, 1], { scoreThreshold: 0.25, iouThreshold: 0.5 });
    expect(m.classIds).toEqual([0, 1]);
    expect(m.counts).toEqual([
      [1, 0, 0],
      [1, 0, 1],
      [0, 1, 0],
    ]);
  });

  it('gives each box one match, highest IoU first', () => {
    // two detections on one box: the closer one (IoU 1) matches, the other (IoU 0.8) is a false alarm
    const m = confusionMatrix(
      [{ imageId: 1, classId: 0, box: [0, 0, 10, 10] }],
      [
        { imageId: 1, classId: 0, box: [0, 0, 10, 8], score: 0.9 },
        { imageId: 1, classId: 0, box: [0, 0, 10, 10], score: 0.5 },
      ],
      [0],
      { scoreThreshold: 0.25, iouThreshold: 0.5 },
    );
    expect(m.counts).toEqual([
      [1, 0],
      [1, 0],
    ]);
  });
});
