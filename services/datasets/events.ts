import type { DomainEventBase } from '../../core/events.js';

/** A dataset import finished and created a version. */
export interface DatasetImportedEvent extends DomainEventBase {
  type: 'dataset.imported';
  datasetId: string;
  name: string;
  version: number;
  images: number;
  boxes: number;
  /** Issues in the validation report (errors and warnings). */
  issues: number;
}

/** A new immutable version exists (import, re-split or added samples). */
export interface DatasetVersionCreatedEvent extends DomainEventBase {
  type: 'dataset.version_created';
  datasetId: string;
  name: string;
  version: number;
  reason: 'import' | 'resplit' | 'samples';
}

/** Progress of a running import, throttled. */
export interface DatasetImportProgressEvent extends DomainEventBase {
  type: 'dataset.import_progress';
  name: string;
  phase: ImportPhase;
  done: number;
  total: number;
}

/** The stages of an import, in order. */
export type ImportPhase = 'scan' | 'images' | 'thumbnails' | 'save';

/** Every event the datasets domain emits, discriminated on `type`. */
export type DatasetEvent = DatasetImportedEvent | DatasetVersionCreatedEvent | DatasetImportProgressEvent;
