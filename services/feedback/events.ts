import type { DomainEventBase } from '../../core/events.js';
import type { FeedbackSample, RetrainProposal } from './model.js';

/** A device sent a sample; it waits in the review queue. */
export interface FeedbackReceivedEvent extends DomainEventBase {
  type: 'feedback.received';
  sample: FeedbackSample;
}

/** A person accepted (with boxes) or rejected a sample. */
export interface FeedbackReviewedEvent extends DomainEventBase {
  type: 'feedback.reviewed';
  sample: FeedbackSample;
}

/** Accepted samples became a new dataset version. */
export interface FeedbackDatasetCreatedEvent extends DomainEventBase {
  type: 'feedback.dataset_created';
  /** `name@N` of the new version. */
  ref: string;
  sampleIds: string[];
}

/** A retrain policy fired: a plan waits for a person to approve it; nothing was trained or deployed. */
export interface FeedbackRetrainProposedEvent extends DomainEventBase {
  type: 'feedback.retrain_proposed';
  proposal: RetrainProposal;
}

/** Every event the feedback domain emits. */
export type FeedbackEvent =
  FeedbackReceivedEvent | FeedbackReviewedEvent | FeedbackDatasetCreatedEvent | FeedbackRetrainProposedEvent;
