import { CHANGE_RULES } from './change-rules.js';
import { READ_RULES } from './read-rules.js';
import type { SlotRule } from './slot-kit.js';

export { targetProblem } from './slot-kit.js';
export type { SlotInput, SlotRule } from './slot-kit.js';

/** The slot rule of every intent of the corpus: adding an intent is corpus lines plus one entry here. */
export const SLOT_RULES: Record<string, SlotRule> = {
  train: CHANGE_RULES.train,
  deploy: CHANGE_RULES.deploy,
  rollback: CHANGE_RULES.rollback,
  pause: CHANGE_RULES.pause,
  resume: CHANGE_RULES.resume,
  cancel_training: CHANGE_RULES.cancelTraining,
  training_status: READ_RULES.trainingStatus,
  training_metrics: READ_RULES.trainingMetrics,
  training_logs: READ_RULES.trainingLogs,
  list_training_jobs: READ_RULES.listTrainingJobs,
  rollout_status: READ_RULES.rolloutStatus,
  list_datasets: READ_RULES.listDatasets,
  describe_dataset: READ_RULES.describeDataset,
  list_models: READ_RULES.listModels,
  describe_model: READ_RULES.describeModel,
  compare: READ_RULES.compare,
  explain: READ_RULES.explain,
  evaluate: CHANGE_RULES.evaluate,
  promote: CHANGE_RULES.promote,
  import_dataset: CHANGE_RULES.importDataset,
  export_dataset: CHANGE_RULES.exportDataset,
  split_dataset: CHANGE_RULES.splitDataset,
  feedback_summary: READ_RULES.feedbackSummary,
  feedback_to_dataset: CHANGE_RULES.feedbackToDataset,
  query_audit: READ_RULES.queryAudit,
  verify_audit: READ_RULES.verifyAudit,
  list_approvals: READ_RULES.listApprovals,
  search: READ_RULES.search,
  list_devices: READ_RULES.listDevices,
  describe_device: READ_RULES.listDevices,
};

/** What a question about a change reads instead: a question never plans a change. */
export const READ_INSTEAD: Record<string, string> = {
  train: 'training_status',
  cancel_training: 'training_status',
  deploy: 'list_devices',
  rollback: 'rollout_status',
  pause: 'rollout_status',
  resume: 'rollout_status',
  promote: 'describe_model',
  evaluate: 'describe_model',
  import_dataset: 'list_datasets',
  export_dataset: 'describe_dataset',
  split_dataset: 'describe_dataset',
  feedback_to_dataset: 'feedback_summary',
};

/** How an intent reads to a person, for "did you mean" choices. */
export const INTENT_LABEL: Record<string, string> = {
  train: 'train a model',
  deploy: 'deploy a model',
  rollback: 'roll back a rollout',
  pause: 'pause a rollout',
  resume: 'resume a rollout',
  cancel_training: 'cancel a training job',
  training_status: 'show training status',
  training_metrics: 'show training metrics',
  training_logs: 'show training logs',
  list_training_jobs: 'list training jobs',
  rollout_status: 'show rollout status',
  list_datasets: 'list datasets',
  describe_dataset: 'show a dataset',
  list_models: 'list models',
  describe_model: 'show a model version',
  compare: 'compare two model versions',
  explain: 'explain a run, model or rollout',
  evaluate: 'evaluate a model version',
  promote: 'promote a model version',
  import_dataset: 'import a dataset',
  export_dataset: 'export a dataset',
  split_dataset: 're-split a dataset',
  feedback_summary: 'summarise device feedback',
  feedback_to_dataset: 'add feedback to a dataset',
  query_audit: 'show the audit log',
  verify_audit: 'verify the audit log',
  list_approvals: 'list pending approvals',
  search: 'search',
  list_devices: 'list devices',
  describe_device: 'show a device',
};
