export {
  isModelName,
  MODEL_STAGES,
  modelNameFrom,
  ModelRegistry,
  modelSearchDoc,
  modelSearchDocs,
} from './model.registry.js';
export type {
  ModelArtifact,
  ModelComparison,
  ModelRegistryOptions,
  ModelStage,
  ModelVersion,
  RegisterArtifactInput,
  StageChange,
} from './model.registry.js';
export type { ModelEvaluatedEvent, ModelEvaluationProgressEvent, ModelEvent, ModelPromotedEvent, ModelRegisteredEvent } from './events.js';
export { DEFAULT_EVALUATION_LIMITS, evaluateInputSchema, matchClasses, ModelEvaluationService } from './model.evaluation.js';
export type {
  ClassEvaluationResult,
  EvaluateInput,
  EvaluationLimits,
  EvaluationProgress,
  ModelEvaluation,
  ModelEvaluationServiceDeps,
} from './model.evaluation.js';
