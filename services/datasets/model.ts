import type { LabeledBox, Split } from '../../vision/formats/index.js';
import type { DatasetRow, VersionRow } from './dataset.repository.js';
import type { ImportPhase } from './events.js';
import type { DatasetVersionStats, ValidationReport } from './report.js';
import type { SplitRatios } from './split.js';
import { DEFAULT_ZIP_LIMITS, type ZipLimits } from './zip.js';

/** Bounds and knobs of the dataset service. */
export interface DatasetLimits {
  zip: ZipLimits;
  /** Images with more pixels than this are reported and left out. */
  maxImagePixels: number;
  /** How many images of a version get a thumbnail. */
  thumbnails: number;
  /** Images processed at once during an import. */
  concurrency: number;
}

/** Defaults: zip limits of `DEFAULT_ZIP_LIMITS`, 50 megapixels, 24 thumbnails, 8 images at once. */
export const DEFAULT_DATASET_LIMITS: DatasetLimits = {
  zip: DEFAULT_ZIP_LIMITS,
  maxImagePixels: 50_000_000,
  thumbnails: 24,
  concurrency: 8,
};

/** Progress of an import, for a progress bar. */
export interface ImportProgress {
  phase: ImportPhase;
  done: number;
  total: number;
}

/** A dataset in a listing, with its latest version's size. */
export interface DatasetSummary {
  id: string;
  name: string;
  description: string;
  tags: string[];
  latestVersion: number;
  images: number;
  boxes: number;
  classNames: string[];
  updatedAt: number;
}

/** One immutable version, with its statistics. */
export interface DatasetVersionInfo {
  id: string;
  datasetId: string;
  name: string;
  version: number;
  /** `name@version`. */
  ref: string;
  description: string;
  tags: string[];
  classNames: string[];
  stats: DatasetVersionStats;
  splitRatios: SplitRatios;
  lineage: Record<string, unknown>;
  note: string | null;
  latestVersion: number;
  createdBy: string;
  createdAt: number;
}

/** What an import (or any new version) returns. */
export interface VersionResult {
  ref: string;
  version: DatasetVersionInfo;
  report: ValidationReport;
}

/** An image of a version with its boxes (normalised corners) and class names. */
export interface DatasetImage {
  sha256: string;
  imageKey: string;
  width: number;
  height: number;
  split: Split;
  boxes: Array<LabeledBox & { className: string }>;
  thumbnailKey: string | null;
  sourcePath: string;
}

/** The `train.start.dataset` payload: every image and label file in YOLO layout with a signed URL. */
export interface TrainingManifest {
  name: string;
  version: number;
  classNames: string[];
  files: Array<{ path: string; url: string; sha256: string; size: number }>;
}

/** Where an export went. */
export interface ExportResult {
  format: 'yolo' | 'coco';
  images: number;
  /** The folder or zip file written, or the storage key of the zip. */
  location: string;
  kind: 'folder' | 'zip-file' | 'zip-storage';
  /** For a zip in storage: a signed download link (valid for an hour). */
  url?: string;
  bytes?: number;
  sha256?: string;
}

/** The idempotent-effect kind of a created dataset version. */
export const VERSION_EFFECT = 'dataset.version';

/** A dataset and one of its versions as the domain's `DatasetVersionInfo`. */
export function versionInfo(dataset: DatasetRow, v: VersionRow): DatasetVersionInfo {
  return {
    id: v.id,
    datasetId: dataset.id,
    name: dataset.name,
    version: v.version,
    ref: `${dataset.name}@${v.version}`,
    description: dataset.description,
    tags: JSON.parse(dataset.tags) as string[],
    classNames: JSON.parse(v.class_names) as string[],
    stats: JSON.parse(v.stats) as DatasetVersionStats,
    splitRatios: JSON.parse(v.split_ratios) as SplitRatios,
    lineage: JSON.parse(v.lineage) as Record<string, unknown>,
    note: v.note,
    latestVersion: dataset.latest_version,
    createdBy: v.created_by,
    createdAt: Number(v.created_at),
  };
}
