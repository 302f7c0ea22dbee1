import type { DomainEventBase } from '../events.js';
import type { ModelStage, ModelVersion } from './model.registry.js';

/** A training run produced a new model version. */
export interface ModelRegisteredEvent extends DomainEventBase {
  type: 'model.registered';
  version: ModelVersion;
}

/** A stage (candidate, staging, production) now points at a version. */
export interface ModelPromotedEvent extends DomainEventBase {
  type: 'model.promoted';
  name: string;
  stage: ModelStage;
  versionId: string;
  version: number;
  previousVersionId: string | null;
  by: string;
}

/** Every event the model registry emits. */
export type ModelEvent = ModelRegisteredEvent | ModelPromotedEvent;
