export { EDGE_RUNNER_VERSION, EdgeRunner } from './edge-runner.js';
export type { EdgeRunnerOptions } from './edge-runner.js';
export {
  deviceApiKeyFromToken,
  edgeOptionsFromEnv,
  edgeRunnerOptionsSchema,
  httpUploadUrlRequester,
  runEdgeRunnerCommand,
} from './command.js';
export type { EdgeRunnerCommandOptions } from './command.js';
export { FeedbackSampler, feedbackReason } from './feedback.js';
export type { FeedbackOptions, FeedbackReason, FeedbackSamplerOptions } from './feedback.js';
export { ModelStore, modelRecordSchema } from './model-store.js';
export type { CommandOutcome, DeviceState, ModelRecord } from './model-store.js';
export { TelemetryOutbox } from './outbox.js';
export type { TelemetryOutboxOptions } from './outbox.js';
export {
  EXECUTION_PROVIDERS,
  detectHardware,
  detectTensorrtVersion,
  loadWithFallback,
  providerChain,
  providerListSchema,
  tensorrtCacheDir,
} from './providers.js';
export type { ExecutionProvider, LoadedModel, TensorrtCache } from './providers.js';
export { InferenceStats, percentile } from './stats.js';
export { CpuMeter, readMemoryUsedMb, readTemperature, THERMAL_ROOTS } from './system.js';
export { createDeviceMetrics } from './device-metrics.js';
export type { DeviceMetrics, DeviceMetricsSource } from './device-metrics.js';
export { deviceApp } from './device-api.js';
export type { DeviceApiHandlers } from './device-api.js';
export {
  FfmpegSource,
  FolderSource,
  FramePacer,
  HttpPushSource,
  ImageListSource,
  createFrameSource,
} from './sources/index.js';
export type {
  FfmpegSourceOptions,
  FolderSourceOptions,
  Frame,
  FrameSource,
  HttpPushSourceOptions,
  ImageListSourceOptions,
} from './sources/index.js';
