import { confusionMatrix, type ConfusionMatrix } from './confusion.js';
import type { LabeledBox } from './formats/index.js';
import { evaluateDetections, type Evaluation, type GroundTruth, type ScoredDetection } from './evaluate.js';
import { decodeImage } from './letterbox.js';
import type { Detector } from './pipeline.js';

/**
 * Detection settings of every evaluation (the platform's and `visioninapp val`): scores down to
 * 0.001 feed the precision/recall curve, NMS IoU 0.6 as the built-in trainer evaluates
 * (gpu-runner/builtin/evaluate.py), at most 300 detections per image of which COCO scores 100.
 */
export const EVALUATION_SETTINGS = { minScore: 0.001, nmsIou: 0.6, maxDet: 300, maxDets: 100 } as const;

/** One image to evaluate on: its encoded bytes and its ground truth in normalised corners. */
export interface EvaluationImage {
  bytes(): Promise<Buffer>;
  /** Ground truth for the decoded size (normalised 0..1 corners; `difficult` boxes are ignore regions). */
  boxes(width: number, height: number): readonly LabeledBox[];
}

/** What `evaluateDetector` returns: COCO-style scores, the confusion matrix at `conf`, and timing. */
export interface DetectorEvaluation {
  evaluation: Evaluation;
  /** Over the dataset's classes at the `conf` operating threshold and IoU 0.5. */
  confusion: ConfusionMatrix;
  images: number;
  inferenceMs: number;
  scoringMs: number;
}

/** Options of `evaluateDetector`. */
export interface EvaluateDetectorOptions {
  /** Model class index → dataset class index, or -1 to leave a model class out. */
  classMap: readonly number[];
  /** Number of dataset classes (all are scored). */
  classCount: number;
  /** Confidence of the precision/recall operating point. */
  conf: number;
  /** Called after each image with the count so far; may throw to stop (e.g. cancelled). */
  onImage?: (done: number) => void;
}

/**
 * Runs a loaded detector over images and scores its detections against their ground truth with
 * `evaluateDetections` (pycocotools-equivalent mAP50, mAP50-95, per-class AP, precision and recall).
 * The one evaluation loop of the platform and the command line, so both give the same numbers.
 */
export async function evaluateDetector(
  detector: Detector,
  images: AsyncIterable<EvaluationImage> | Iterable<EvaluationImage>,
  opts: EvaluateDetectorOptions,
): Promise<DetectorEvaluation> {
  const gts: GroundTruth[] = [];
  const dets: ScoredDetection[] = [];
  let done = 0;
  let inferenceMs = 0;
  for await (const image of images) {
    const raw = await decodeImage(await image.bytes());
    const imageId = done;
    for (const b of image.boxes(raw.width, raw.height)) {
      gts.push({
        imageId,
        classId: b.classId,
        box: [b.x1 * raw.width, b.y1 * raw.height, b.x2 * raw.width, b.y2 * raw.height],
        ...(b.difficult ? { iscrowd: true } : {}),
      });
    }
    const t = performance.now();
    const found = await detector.detect(raw, {
      conf: EVALUATION_SETTINGS.minScore,
      iou: EVALUATION_SETTINGS.nmsIou,
      maxDet: EVALUATION_SETTINGS.maxDet,
    });
    inferenceMs += performance.now() - t;
    for (const d of found) {
      const classId = opts.classMap[d.classId] ?? -1;
      if (classId >= 0) dets.push({ imageId, classId, box: d.box, score: d.score });
    }
    done++;
    opts.onImage?.(done);
  }
  const t = performance.now();
  const classIds = Array.from({ length: opts.classCount }, (_, i) => i);
  const evaluation = evaluateDetections(gts, dets, {
    classIds,
    maxDets: EVALUATION_SETTINGS.maxDets,
    scoreThreshold: opts.conf,
  });
  const confusion = confusionMatrix(gts, dets, classIds, { scoreThreshold: opts.conf, iouThreshold: 0.5 });
  return { evaluation, confusion, images: done, inferenceMs, scoringMs: performance.now() - t };
}
