import type { DomainEventBase } from '../../core/events.js';
import type { TrainingJob } from './model.js';

/** A job was created and waits for a runner. */
export interface TrainingQueuedEvent extends DomainEventBase {
  type: 'training.queued';
  job: TrainingJob;
}

/** A runner was chosen and `train.start` sent to it. */
export interface TrainingAssignedEvent extends DomainEventBase {
  type: 'training.assigned';
  job: TrainingJob;
  runnerId: string;
}

/** The job changed state without ending: claimed, running, or re-queued after its runner went silent. */
export interface TrainingStatusEvent extends DomainEventBase {
  type: 'training.status';
  job: TrainingJob;
  /** What happened, for people: "running on gpu-1", "runner gpu-1 stopped responding; re-queued (attempt 2 of 3)". */
  message: string;
}

/** Progress within an epoch, or the metrics of a finished epoch. */
export interface TrainingMetricsEvent extends DomainEventBase {
  type: 'training.metrics';
  jobId: string;
  attempt: number;
  epoch: number;
  epochs: number;
  kind: 'progress' | 'epoch';
  batch?: number;
  batches?: number;
  metrics: Record<string, number>;
}

/** New log lines of the current attempt. */
export interface TrainingLogEvent extends DomainEventBase {
  type: 'training.log';
  jobId: string;
  attempt: number;
  lines: string[];
}

/** The job ended: succeeded (with its model version), failed or cancelled. */
export interface TrainingFinishedEvent extends DomainEventBase {
  type: 'training.finished';
  job: TrainingJob;
  status: 'succeeded' | 'failed' | 'cancelled';
  /** `name@N` of the registered version when succeeded. */
  modelRef?: string;
}

/** Every event the training domain emits. */
export type TrainingEvent =
  | TrainingQueuedEvent
  | TrainingAssignedEvent
  | TrainingStatusEvent
  | TrainingMetricsEvent
  | TrainingLogEvent
  | TrainingFinishedEvent;
