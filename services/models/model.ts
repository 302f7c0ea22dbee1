import { type Split } from '../../vision/formats/index.js';
import type { MessagePayload, OutputLayout, TrainConfig } from '../../protocol/envelope.js';

/** Stages (aliases) a model name can point at one of its versions. */
export const MODEL_STAGES = ['candidate', 'staging', 'production'] as const;

export type ModelStage = (typeof MODEL_STAGES)[number];

/** One stored artifact of a version. */
export interface ModelArtifact {
  name: string;
  key: string;
  sha256: string;
  size: number;
}

/** A registered model version with its artifacts, metrics and lineage. */
export interface ModelVersion {
  id: string;
  projectId: string;
  name: string;
  version: number;
  /** `name@version`. */
  ref: string;
  /** Stages currently pointing at this version. */
  stages: ModelStage[];
  /** The ONNX file devices run. */
  model: { key: string; sha256: string; size: number; layout: OutputLayout; inputSize: number };
  classNames: string[];
  artifacts: ModelArtifact[];
  /** Overall metrics, e.g. mAP50, mAP50_95, precision, recall. */
  metrics: Record<string, number>;
  /** Class name → metric name → value, where the trainer reported it. */
  perClass: Record<string, Record<string, number>>;
  lineage: {
    dataset: string | null;
    datasetName: string | null;
    datasetVersion: number | null;
    config: TrainConfig | Record<string, unknown>;
    jobId: string | null;
    attempt: number | null;
    runnerId: string | null;
    codeVersion: string | null;
  };
  createdBy: string;
  createdAt: number;
}

/** One change of a stage, kept forever. */
export interface StageChange {
  name: string;
  stage: ModelStage;
  versionId: string;
  version: number | null;
  previousVersionId: string | null;
  setBy: string;
  setAt: number;
}

/** Metric-by-metric comparison of two versions (delta = b − a). */
export interface ModelComparison {
  a: ModelVersion;
  b: ModelVersion;
  metrics: Array<{ metric: string; a: number | null; b: number | null; delta: number | null }>;
  perClass: Array<{
    className: string;
    metric: string;
    a: number | null;
    b: number | null;
    delta: number | null;
  }>;
  sameDataset: boolean;
  sameClasses: boolean;
}

/** What `registerFromArtifact` needs: the job's lineage and the runner's `artifact.ready` payload. */
export interface RegisterArtifactInput {
  projectId: string;
  name: string;
  job: {
    id: string;
    attempt: number;
    runnerId: string | null;
    config: TrainConfig;
    dataset: { name: string; version: number };
  };
  artifact: MessagePayload<'artifact.ready'>;
  /** Who asked for the training (recorded as creator). */
  createdBy: string;
}

/** Per-class result of an evaluation; AP is null for a class with no ground truth in the evaluated images. */
export interface ClassEvaluationResult {
  className: string;
  /** Ground-truth boxes (instances) of the class. */
  instances: number;
  /** Detections of the class kept for scoring (score ≥ minScore, at most 100 per image). */
  detections: number;
  ap50: number | null;
  ap50_95: number | null;
  /** At the `conf` operating threshold, IoU 0.5. */
  precision: number;
  recall: number;
  /**
   * Precision-recall curve at IoU 0.5: interpolated precision at recall 0, 0.01, …, 1 (101 points,
   * 3 decimals); absent for a class without ground truth and for evaluations recorded before it was kept.
   */
  pr50?: number[];
}

/**
 * Confusion matrix of an evaluation at its `conf` threshold and IoU 0.5: `counts[actual][predicted]`
 * over `classes` and a last background row and column (a missed box is [class][background]; a
 * detection of nothing is [background][class]).
 */
export interface EvaluationConfusion {
  classes: string[];
  counts: number[][];
}

/** One recorded evaluation of a model version on a dataset version's split. */
export interface ModelEvaluation {
  id: string;
  projectId: string;
  modelVersionId: string;
  /** `name@version` of the model. */
  model: string;
  modelSha256: string;
  /** `name@version` of the dataset. */
  dataset: string;
  split: Split;
  /** Images evaluated. */
  images: number;
  /** Images in the split; more than `images` when the evaluation was capped by `maxImages`. */
  imagesTotal: number;
  /** COCO mAP@0.5 and mAP@0.5:0.95 over the dataset's classes with ground truth; precision and recall at `conf`. */
  metrics: { mAP50: number; mAP50_95: number; precision: number; recall: number };
  conf: number;
  perClass: ClassEvaluationResult[];
  settings: {
    conf: number;
    iou: number;
    minScore: number;
    maxDet: number;
    maxImages: number;
    /** Model classes the dataset does not have: their detections were left out. */
    ignoredModelClasses: string[];
  };
  timing: { loadMs: number; inferenceMs: number; perImageMs: number; scoringMs: number; totalMs: number };
  /** Null for evaluations recorded before the matrix was kept. */
  confusion: EvaluationConfusion | null;
  createdBy: string;
  startedAt: number;
  finishedAt: number;
}

/** Progress of an evaluation, for a progress bar. */
export interface EvaluationProgress {
  done: number;
  total: number;
}
