import type { DomainEventBase } from '../../core/events.js';
import type { ModelEvaluation } from './model.js';
import type { ModelStage, ModelVersion } from './model.js';

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

/** Progress of a running evaluation, throttled. */
export interface ModelEvaluationProgressEvent extends DomainEventBase {
  type: 'model.evaluation_progress';
  versionId: string;
  model: string;
  dataset: string;
  split: string;
  done: number;
  total: number;
}

/** An evaluation finished and was recorded. */
export interface ModelEvaluatedEvent extends DomainEventBase {
  type: 'model.evaluated';
  evaluation: ModelEvaluation;
}

/** Every event the models domain emits (registry and evaluations). */
export type ModelEvent =
  ModelRegisteredEvent | ModelPromotedEvent | ModelEvaluationProgressEvent | ModelEvaluatedEvent;
