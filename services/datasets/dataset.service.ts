import path from 'node:path';
import {} from '../../vision/formats/index.js';
import { requireRole, type CallContext } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import type { Db } from '../infra/db/port.js';
import type { Storage } from '../infra/storage/port.js';
import type { Logger } from '../../core/log.js';
import { DatasetExporter } from './dataset.export.js';
import { DatasetImporter } from './dataset.import.js';
import { DatasetIngest } from './dataset.ingest.js';
import { DatasetRepository, type DatasetRow, type VersionRow } from './dataset.repository.js';
import { DatasetVersionWriter } from './dataset.versions.js';
import type { DatasetEvent } from './events.js';
import {
  DEFAULT_DATASET_LIMITS,
  versionInfo,
  type DatasetImage,
  type DatasetLimits,
  type DatasetSummary,
  type DatasetVersionInfo,
  type ExportResult,
  type ImportProgress,
  type TrainingManifest,
  type VersionResult,
} from './model.js';
import type { ValidationReport } from './report.js';
import {
  exportInputSchema,
  listImagesSchema,
  parseInput,
  splitRatiosSchema,
  type AddSamplesOptions,
  type ExportInput,
  type ImportInput,
  type ListImagesOptions,
  type SampleInput,
} from './schemas.js';
import { NO_SERVER_PATHS, resolveExportPath, type DatasetPathPolicy } from './roots.js';
import { splitForHash, type SplitRatios } from './split.js';
import { DEFAULT_ZIP_LIMITS } from './zip.js';

export { DEFAULT_DATASET_LIMITS } from './model.js';
export type {
  DatasetImage,
  DatasetLimits,
  DatasetSummary,
  DatasetVersionInfo,
  ExportResult,
  ImportProgress,
  TrainingManifest,
  VersionResult,
} from './model.js';
/** Dependencies of the dataset service. */
export interface DatasetServiceDeps {
  db: Db;
  storage: Storage;
  events: { emit(event: DatasetEvent): void };
  log: Logger;
  now?: () => number;
  limits?: Partial<DatasetLimits>;
  /** Server folders imports may read and exports may write; none when omitted (uploads, storage and zip buffers only). */
  paths?: DatasetPathPolicy;
}

const REF = /^([a-z0-9][a-z0-9._-]{0,63})(?:@(\d+))?$/;

/**
 * Datasets: import (YOLO, COCO, VOC) with validation, immutable versions, splits, stats, export and
 * training manifests, as use cases. SQL is `DatasetRepository`, the file work of an import
 * `DatasetIngest`, the version transaction `DatasetVersionWriter`, exports `DatasetExporter`, search
 * documents `dataset.search.ts`.
 */
export class DatasetService {
  private readonly db: Db;
  private readonly storage: Storage;
  private readonly events: DatasetServiceDeps['events'];
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly limits: DatasetLimits;
  private readonly paths: DatasetPathPolicy;
  private readonly ingest: DatasetIngest;
  private readonly exporter: DatasetExporter;
  private readonly versions: DatasetVersionWriter;
  private readonly importer: DatasetImporter;

  constructor(deps: DatasetServiceDeps) {
    this.db = deps.db;
    this.storage = deps.storage;
    this.events = deps.events;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.limits = {
      ...DEFAULT_DATASET_LIMITS,
      ...deps.limits,
      zip: { ...DEFAULT_ZIP_LIMITS, ...deps.limits?.zip },
    };
    this.paths = deps.paths ?? NO_SERVER_PATHS;
    this.ingest = new DatasetIngest(this.storage, this.limits, this.log);
    this.exporter = new DatasetExporter(this.storage, this.now);
    this.versions = new DatasetVersionWriter(this.db, this.events, this.now);
    this.importer = new DatasetImporter({
      storage: this.storage,
      events: this.events,
      now: this.now,
      limits: this.limits,
      paths: this.paths,
      repo: this.repo(),
      ingest: this.ingest,
      versions: this.versions,
      resolveRef: (ctx, ref) => this.resolveRef(ctx, ref),
    });
  }

  /** Datasets of the caller's project with their latest version's size. */
  async list(ctx: CallContext): Promise<DatasetSummary[]> {
    const repo = this.repo();
    const rows = await repo.listDatasets(ctx.projectId);
    const out: DatasetSummary[] = [];
    for (const d of rows) {
      const v = await repo.findVersion(d.id, d.latest_version);
      out.push({
        id: d.id,
        name: d.name,
        description: d.description,
        tags: JSON.parse(d.tags) as string[],
        latestVersion: d.latest_version,
        images: v?.image_count ?? 0,
        boxes: v?.box_count ?? 0,
        classNames: v === undefined ? [] : (JSON.parse(v.class_names) as string[]),
        updatedAt: Number(d.updated_at),
      });
    }
    return out;
  }

  /** Resolves `name@N` or `name` (the latest version) in the caller's project; `not_found` lists what exists. */
  async resolveRef(ctx: CallContext, ref: string): Promise<{ dataset: DatasetRow; version: VersionRow }> {
    const m = REF.exec(ref.trim());
    if (m === null)
      throw new PlatformError(
        'invalid_input',
        `"${ref}" is not a dataset reference; use name or name@version, e.g. helmets-v2@3`,
      );
    const repo = this.repo();
    const dataset = await repo.findDataset(ctx.projectId, m[1]!);
    if (dataset === undefined) {
      const known = (await repo.listDatasets(ctx.projectId)).map((d) => d.name);
      throw new PlatformError(
        'not_found',
        `dataset "${m[1]}" not found; known datasets: ${known.length > 0 ? known.slice(0, 20).join(', ') : '(none yet; import one first)'}`,
      );
    }
    const number = m[2] === undefined ? dataset.latest_version : Number(m[2]);
    const version = await repo.findVersion(dataset.id, number);
    if (version === undefined) {
      throw new PlatformError(
        'not_found',
        `dataset "${dataset.name}" has no version ${number}; versions are 1..${dataset.latest_version}`,
      );
    }
    return { dataset, version };
  }

  /** One version's details and statistics. */
  async get(ctx: CallContext, ref: string): Promise<DatasetVersionInfo> {
    const { dataset, version } = await this.resolveRef(ctx, ref);
    return versionInfo(dataset, version);
  }

  /** Every version of a dataset, newest first. */
  async listVersions(ctx: CallContext, name: string): Promise<DatasetVersionInfo[]> {
    const { dataset } = await this.resolveRef(ctx, name);
    return (await this.repo().listVersions(dataset.id)).map((v) => versionInfo(dataset, v));
  }

  /** The validation report of a version. */
  async report(ctx: CallContext, ref: string): Promise<ValidationReport> {
    const { version } = await this.resolveRef(ctx, ref);
    return JSON.parse(version.report) as ValidationReport;
  }

  /** A page of a version's images with their boxes, optionally of one split. */
  async listImages(
    ctx: CallContext,
    ref: string,
    opts: ListImagesOptions = {},
  ): Promise<{ total: number; items: DatasetImage[] }> {
    const o = parseInput(listImagesSchema, opts, 'listImages options');
    const { version } = await this.resolveRef(ctx, ref);
    const classNames = JSON.parse(version.class_names) as string[];
    const repo = this.repo();
    const [total, rows] = await Promise.all([
      repo.countImages(version.id, o.split),
      repo.listImages(version.id, o),
    ]);
    return {
      total,
      items: rows.map((r) => ({
        sha256: r.sha256,
        imageKey: r.imageKey,
        width: r.width,
        height: r.height,
        split: r.split,
        boxes: r.boxes.map((b) => ({ ...b, className: classNames[b.classId] ?? String(b.classId) })),
        thumbnailKey: r.thumbnailKey,
        sourcePath: r.sourcePath,
      })),
    };
  }

  /**
   * Imports a dataset from a folder, a zip or a storage prefix as a new version of `name`: every
   * image is checked (decodable, under the pixel limit, not a duplicate), boxes are validated, what
   * is valid is stored content-addressed and written in one transaction, the rest is reported.
   */
  import(
    ctx: CallContext,
    input: ImportInput,
    onProgress?: (p: ImportProgress) => void,
  ): Promise<VersionResult> {
    return this.importer.import(ctx, input, onProgress);
  }

  /** A new version with the same images split again by content hash with new ratios. */
  async resplit(ctx: CallContext, ref: string, ratios: SplitRatios): Promise<VersionResult> {
    requireRole(ctx, 'operator', 'changing datasets');
    const r = parseInput(splitRatiosSchema, ratios, 'split ratios');
    const { dataset, version } = await this.resolveRef(ctx, ref);
    const parentRef = `${dataset.name}@${version.version}`;
    const images = (await this.repo().listImages(version.id)).map((img) => ({
      ...img,
      split: splitForHash(img.sha256, r),
    }));
    const parentReport = JSON.parse(version.report) as ValidationReport;
    return this.versions.create(ctx, {
      name: dataset.name,
      classNames: JSON.parse(version.class_names) as string[],
      images,
      report: { ...parentReport, format: 'resplit', origin: parentRef },
      ratios: r,
      splitMode: 'hash',
      lineage: { kind: 'resplit', parent: parentRef },
      note: `re-split ${parentRef} as ${r.train}/${r.val}/${r.test}`,
      reason: 'resplit',
    });
  }

  /**
   * A new version: the parent's images plus reviewed samples (images already in storage, boxes in
   * normalised corners). A sample of an image already present replaces its boxes. Unknown class
   * names extend the class list. Used by the feedback loop; `lineage` is recorded as given.
   */
  addSamples(
    ctx: CallContext,
    ref: string,
    samples: SampleInput[],
    opts: AddSamplesOptions = {},
  ): Promise<VersionResult> {
    return this.importer.addSamples(ctx, ref, samples, opts);
  }

  /** The training payload of a version: YOLO-layout paths with signed URLs, sha256 and sizes. */
  async trainingManifest(
    ctx: CallContext,
    ref: string,
    presign: (key: string) => Promise<string>,
  ): Promise<TrainingManifest> {
    const { dataset, version } = await this.resolveRef(ctx, ref);
    const images = await this.repo().listImages(version.id);
    const files: TrainingManifest['files'] = [];
    for (const img of images) {
      const ext = path.posix.extname(img.imageKey);
      files.push({
        path: `images/${img.split}/${img.sha256}${ext}`,
        url: await presign(img.imageKey),
        sha256: img.sha256,
        size: img.imageBytes,
      });
      files.push({
        path: `labels/${img.split}/${img.sha256}.txt`,
        url: await presign(img.labelKey),
        sha256: img.labelSha256,
        size: img.labelBytes,
      });
    }
    return {
      name: dataset.name,
      version: version.version,
      classNames: JSON.parse(version.class_names) as string[],
      files,
    };
  }

  /**
   * Writes a version as YOLO or COCO to a zip in storage (`exports/<project>/...`, with a download
   * link) or, when a path is given, to a new folder or zip file under the export roots (never
   * elsewhere, never in the app's own folder; files 0600, folders 0700).
   */
  async export(ctx: CallContext, ref: string, input: ExportInput): Promise<ExportResult> {
    const req = parseInput(exportInputSchema, input, 'export');
    const target =
      req.to.path === undefined ? undefined : await resolveExportPath(req.to.path, this.paths.exports);
    const { dataset, version } = await this.resolveRef(ctx, ref);
    const images = await this.repo().listImages(version.id);
    return this.exporter.write(ctx, req, target, dataset, version, images);
  }

  private repo(): DatasetRepository {
    return new DatasetRepository(this.db.kysely);
  }
}
