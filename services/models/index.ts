export { isModelName, modelNameFrom, ModelRegistry } from './model.registry.js';
export { modelSearchDoc, modelSearchDocs } from './model.search.js';
export { MODEL_STAGES } from './model.js';
export type { ModelRegistryOptions } from './model.registry.js';
export type {
  ModelArtifact,
  ModelComparison,
  ModelStage,
  ModelVersion,
  RegisterArtifactInput,
  StageChange,
} from './model.js';
export type {
  ModelEvaluatedEvent,
  ModelEvaluationProgressEvent,
  ModelEvent,
  ModelPromotedEvent,
  ModelRegisteredEvent,
} from './events.js';
export {
  DEFAULT_EVALUATION_LIMITS,
  evaluateInputSchema,
  matchClasses,
  ModelEvaluationService,
} from './model.evaluation.js';
export type { EvaluateInput, EvaluationLimits, ModelEvaluationServiceDeps } from './model.evaluation.js';
export { DEFAULT_TRYOUT_LIMITS, ModelTryout, tryImageOptionsSchema } from './model.tryout.js';
export type {
  ModelTryoutDeps,
  TriedDetection,
  TryImageOptions,
  TryImageResult,
  TryoutLimits,
} from './model.tryout.js';
export type {
  ClassEvaluationResult,
  EvaluationConfusion,
  EvaluationProgress,
  ModelEvaluation,
} from './model.js';
