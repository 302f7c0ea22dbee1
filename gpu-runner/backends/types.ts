import type { OutputLayout, TrainBackend, TrainConfig } from '../../protocol/envelope.js';

/** A metrics update from a training backend: `progress` within an epoch or `epoch` once validated. */
export interface BackendMetrics {
  kind: 'progress' | 'epoch';
  epoch: number;
  epochs: number;
  batch?: number;
  batches?: number;
  metrics: Record<string, number>;
}

/** What a backend trains on and where it writes. */
export interface BackendJob {
  /** Dataset root in YOLO layout (images/<split>, labels/<split>). */
  dataDir: string;
  /** The data.yaml the runner wrote for the dataset. */
  dataYaml: string;
  /** Folder the backend writes its outputs into. */
  outDir: string;
  config: TrainConfig;
  classNames: string[];
  /** Weights to start from (fine-tuning): a checkpoint the same backend wrote (`best.pt`, YOLOX `best_ckpt.pth`). */
  initWeights?: string;
}

/** Callbacks a backend reports through while it trains. */
export interface BackendEvents {
  onLog(line: string): void;
  onMetrics(update: BackendMetrics): void;
}

/** Files and figures of a finished training run. */
export interface BackendResult {
  status: 'succeeded' | 'failed' | 'cancelled';
  /** For a failure: what went wrong and what to do. */
  message?: string;
  /** Absolute paths by artifact name (`model.onnx`, `metrics.json`, `results.csv`, `report.md`). */
  files: Record<string, string>;
  metrics: Record<string, number>;
  perClass?: Record<string, Record<string, number>>;
  layout: OutputLayout;
  inputSize: number;
}

/** A training run in progress. */
export interface BackendRun {
  readonly done: Promise<BackendResult>;
  /** Stops the run (SIGTERM, then SIGKILL after a grace period); `done` resolves as cancelled. */
  cancel(): void;
}

/** A way to train a detector: the built-in PyTorch one, Ultralytics or YOLOX. */
export interface Trainer {
  readonly name: TrainBackend;
  /** Resolves to undefined when the backend can run on this machine, else the reason and how to fix it. */
  unavailableReason(): Promise<string | undefined>;
  train(job: BackendJob, events: BackendEvents): BackendRun;
}
