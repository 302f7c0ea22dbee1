export { TrainingService } from './training.service.js';
export { jobSearchDoc, trainingLogSearchDocs, trainingSearchDocs } from './training.search.js';
export { CHECKPOINT_ARTIFACT, JOB_ARTIFACTS, JOB_STATUSES } from './model.js';
export type { TrainingServiceOptions } from './training.service.js';
export type {
  EpochMetrics,
  JobStatus,
  RunnerInfo,
  StartTrainingInput,
  TrainingDatasets,
  TrainingJob,
  TrainingManifest,
} from './model.js';
export type {
  TrainingAssignedEvent,
  TrainingEvent,
  TrainingFinishedEvent,
  TrainingLogEvent,
  TrainingMetricsEvent,
  TrainingQueuedEvent,
  TrainingStatusEvent,
} from './events.js';
