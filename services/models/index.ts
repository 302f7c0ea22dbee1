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
export type { ModelEvent, ModelPromotedEvent, ModelRegisteredEvent } from './events.js';
