export { FeedbackService, predictionsAsBoxes } from './feedback.service.js';
export { FEEDBACK_REASONS, FEEDBACK_STATUSES, retrainPolicySchema, reviewSchema } from './model.js';
export type { FeedbackDatasets, FeedbackModels, FeedbackServiceOptions } from './feedback.options.js';
export type {
  FeedbackReason,
  FeedbackSample,
  FeedbackStatus,
  RetrainPlan,
  RetrainPolicy,
  RetrainProposal,
  ReviewDecision,
  ReviewedBox,
} from './model.js';
export type {
  FeedbackDatasetCreatedEvent,
  FeedbackEvent,
  FeedbackReceivedEvent,
  FeedbackRetrainProposedEvent,
  FeedbackReviewedEvent,
} from './events.js';
