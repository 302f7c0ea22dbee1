export {
  JOB_ARTIFACTS,
  JOB_STATUSES,
  jobSearchDoc,
  TrainingService,
  trainingSearchDocs,
} from './training.service.js';
export type {
  EpochMetrics,
  JobStatus,
  RunnerInfo,
  StartTrainingInput,
  TrainingDatasets,
  TrainingJob,
  TrainingManifest,
  TrainingServiceOptions,
} from './training.service.js';
export type {
  TrainingAssignedEvent,
  TrainingEvent,
  TrainingFinishedEvent,
  TrainingLogEvent,
  TrainingMetricsEvent,
  TrainingQueuedEvent,
  TrainingStatusEvent,
} from './events.js';
