import { type TrainConfig } from '../../protocol/envelope.js';
import { type CallContext } from '../../core/context.js';

/** States of a job; the last three are final. */
export const JOB_STATUSES = ['queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled'] as const;

export type JobStatus = (typeof JOB_STATUSES)[number];

/** The final states of a job: nothing changes a job in one of them. */
export const FINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

/** True once a job can no longer change (`status` may come from the wire, so any string is accepted). */
export function isFinalJob(status: string): boolean {
  return (FINAL_JOB_STATUSES as readonly string[]).includes(status);
}

/** Artifacts a runner gets a presigned PUT URL for, under `jobs/<jobId>/<attempt>/`. */
export const JOB_ARTIFACTS = [
  'model.onnx',
  'best.pt',
  'metrics.json',
  'results.csv',
  'report.md',
  'train.log',
] as const;

/** The artifact holding the trainer's checkpoint (the built-in's and Ultralytics' best.pt, YOLOX's best_ckpt.pth), which fine-tuning starts from. */
export const CHECKPOINT_ARTIFACT = 'best.pt';

/** The `train.start` dataset payload: a version's files in YOLO layout with signed URLs. */
export interface TrainingManifest {
  name: string;
  version: number;
  classNames: string[];
  files: Array<{ path: string; url: string; sha256: string; size: number }>;
}

/** The one thing training needs from the datasets domain (DatasetService satisfies it). */
export interface TrainingDatasets {
  /** Resolves `name`, `name@N` or `name@latest` and lists its files, each with a URL from `presign`. */
  trainingManifest(
    ctx: CallContext,
    ref: string,
    presign: (key: string) => Promise<string>,
  ): Promise<TrainingManifest>;
}

/** A training job as people and tools see it. */
export interface TrainingJob {
  id: string;
  projectId: string;
  /** Model name the result is registered under. */
  name: string;
  /** `dataset@version` the job trains on. */
  dataset: string;
  config: TrainConfig;
  status: JobStatus;
  runnerId: string | null;
  attempt: number;
  maxAttempts: number;
  requestedBy: string;
  threadId: string | null;
  message: string | null;
  /** Epochs finished in the current attempt, of `epochs`. */
  epochsDone: number;
  epochs: number;
  lastMetrics: Record<string, number> | null;
  modelVersionId: string | null;
  createdAt: number;
  updatedAt: number;
  assignedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  lastSeenAt: number | null;
}

/** Metrics of one finished epoch. */
export interface EpochMetrics {
  attempt: number;
  epoch: number;
  epochs: number;
  metrics: Record<string, number>;
  at: number;
}

/** A GPU runner as last heard from. */
export interface RunnerInfo {
  id: string;
  backends: string[];
  device: unknown;
  version: string | null;
  busyJobId: string | null;
  lastSeenAt: number;
  live: boolean;
}

/** What `start` takes. */
export interface StartTrainingInput {
  /** Dataset reference: `name`, `name@N` or `name@latest`. */
  dataset: string;
  config: TrainConfig;
  /** Model name for the result; default `<dataset>-<backend>`, or the name of `from` when fine-tuning. */
  name?: string;
  threadId?: string;
  /** Model version to start from (`name@N`, `name@production`, `mv_…`): its checkpoint, same backend. */
  from?: string;
}
