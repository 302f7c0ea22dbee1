export {
  FEEDBACK_REASONS,
  FEEDBACK_STATUSES,
  FeedbackService,
  predictionsAsBoxes,
  retrainPolicySchema,
  reviewSchema,
} from './feedback.service.js';
export type {
  FeedbackDatasets,
  FeedbackModels,
  FeedbackReason,
  FeedbackSample,
  FeedbackServiceOptions,
  FeedbackStatus,
  RetrainPlan,
  RetrainPolicy,
  RetrainProposal,
  ReviewDecision,
  ReviewedBox,
} from './feedback.service.js';
export type {
  FeedbackDatasetCreatedEvent,
  FeedbackEvent,
  FeedbackReceivedEvent,
  FeedbackRetrainProposedEvent,
  FeedbackReviewedEvent,
} from './events.js';
