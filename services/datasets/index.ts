export { DatasetService } from './dataset.service.js';
export { DEFAULT_DATASET_LIMITS } from './model.js';
export { datasetSearchDoc, datasetSearchDocs, searchDatasets } from './dataset.search.js';
export type { DatasetServiceDeps } from './dataset.service.js';
export type {
  DatasetLimits,
  ImportProgress,
  DatasetSummary,
  DatasetVersionInfo,
  VersionResult,
  DatasetImage,
  TrainingManifest,
  ExportResult,
} from './model.js';
export type {
  DatasetEvent,
  DatasetImportedEvent,
  DatasetVersionCreatedEvent,
  DatasetImportProgressEvent,
  ImportPhase,
} from './events.js';
export { formatReport } from './report.js';
export type { ValidationReport, IssueGroup, DatasetVersionStats } from './report.js';
export { DATASET_NAME, datasetNameSchema, importInputSchema, splitRatiosSchema } from './schemas.js';
export type {
  ImportInput,
  SampleInput,
  AddSamplesOptions,
  ListImagesOptions,
  ExportInput,
} from './schemas.js';
export { DEFAULT_SPLIT, splitForHash } from './split.js';
export type { SplitRatios } from './split.js';
export { DEFAULT_ZIP_LIMITS, extractZipSafely } from './zip.js';
export type { ZipLimits } from './zip.js';
export type { ImportSourceSpec } from './sources.js';
export { DatasetUploads, DEFAULT_UPLOAD_LIMITS, uploadStartSchema } from './dataset.upload.js';
export type { FinishedUpload, UploadLimits, UploadStart, UploadStatus } from './dataset.upload.js';
