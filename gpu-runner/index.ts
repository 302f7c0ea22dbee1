export { GpuRunner, LogBatcher } from './runner.js';
export type { GpuRunnerOptions } from './runner.js';
export { OrderedPublisher } from './publisher.js';
export type { OrderedPublisherOptions } from './publisher.js';
export { ClaimStore } from './claims.js';
export { checkDataset, downloadDataset, safeRelative, writeDataYaml } from './dataset.js';
export { detectDevice } from './device.js';
export type { RunnerDevice } from './device.js';
export {
  BUILTIN_TRAIN_SCRIPT,
  BuiltinTrainer,
  TORCH_INSTALL_HINT,
  widthForModel,
} from './backends/builtin.js';
export type { BuiltinTrainerOptions } from './backends/builtin.js';
export {
  UltralyticsTrainer,
  ultralyticsLayout,
  ultralyticsRowMetrics,
  ultralyticsWeights,
} from './backends/ultralytics.js';
export type { UltralyticsTrainerOptions } from './backends/ultralytics.js';
export { YoloxLogParser, YoloxTrainer, yoloToCoco, yoloxExpFile } from './backends/yolox.js';
export type { YoloxTrainerOptions } from './backends/yolox.js';
export { CsvFollower, parseNumericCsv } from './backends/csv-follow.js';
export type {
  BackendEvents,
  BackendJob,
  BackendMetrics,
  BackendResult,
  BackendRun,
  Trainer,
} from './backends/types.js';
