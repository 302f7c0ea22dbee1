import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { z } from 'zod';
import {
  buildCocoJson,
  detectFormat,
  formatYoloDataYaml,
  formatYoloLabels,
  normalizeBoxes,
  parseCoco,
  parseVoc,
  parseYolo,
  SPLITS,
  type DatasetFormat,
  type FormatIssue,
  type LabeledBox,
  type ParsedDataset,
  type SourceImage,
  type Split,
} from '../../vision/formats/index.js';
import { roleAtLeast, type CallContext } from '../../core/context.js';
import { describeZodError, isPlatformError, PlatformError } from '../../core/errors.js';
import { priorEffect, recordEffect } from '../effects.js';
import { newId } from '../../core/ids.js';
import type { Db } from '../infra/db/port.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import type { SearchDoc } from '../infra/search/port.js';
import type { Storage } from '../infra/storage/port.js';
import type { Logger } from '../../core/log.js';
import {
  DatasetRepository,
  datasetSearchDoc,
  type DatasetRow,
  type VersionImage,
  type VersionRow,
} from './dataset.repository.js';
import type { DatasetEvent, ImportPhase } from './events.js';
import { probeImage, renderThumbnail } from './images.js';
import { buildReport, computeStats, type DatasetVersionStats, type ValidationReport } from './report.js';
import {
  addSamplesOptionsSchema,
  exportInputSchema,
  importInputSchema,
  listImagesSchema,
  sampleSchema,
  splitRatiosSchema,
  type AddSamplesOptions,
  type ExportInput,
  type ImportInput,
  type ListImagesOptions,
  type SampleInput,
} from './schemas.js';
import { NO_SERVER_PATHS, projectStoragePrefix, resolveExportPath, type DatasetPathPolicy } from './roots.js';
import { openSource, type OpenedSource } from './sources.js';
import { DEFAULT_SPLIT, splitForHash, type SplitRatios } from './split.js';
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

interface NewVersionInput {
  name: string;
  description?: string;
  tags?: string[];
  classNames: string[];
  images: VersionImage[];
  report: ValidationReport;
  ratios: SplitRatios;
  splitMode: DatasetVersionStats['splitMode'];
  lineage: Record<string, unknown>;
  note?: string;
  reason: 'import' | 'resplit' | 'samples';
}

const REF = /^([a-z0-9][a-z0-9._-]{0,63})(?:@(\d+))?$/;
const PROGRESS_EVERY_MS = 250;

/** Datasets: import (YOLO, COCO, VOC) with validation, immutable versions, splits, stats, export and training manifests. */
export class DatasetService {
  private readonly db: Db;
  private readonly storage: Storage;
  private readonly events: DatasetServiceDeps['events'];
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly limits: DatasetLimits;
  private readonly paths: DatasetPathPolicy;

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
    const o = parse(listImagesSchema, opts, 'listImages options');
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
  async import(
    ctx: CallContext,
    input: ImportInput,
    onProgress?: (p: ImportProgress) => void,
  ): Promise<VersionResult> {
    this.requireWriter(ctx, 'import datasets');
    const req = parse(importInputSchema, input, 'import');
    // a retry of an import that already created its version (same idempotency key) returns that version
    const earlier = await this.versionCreatedEarlier(ctx);
    if (earlier !== undefined) return earlier;
    const progress = this.progressReporter(ctx, req.name, onProgress);
    const source = await openSource(req.source, {
      storage: this.storage,
      zipLimits: this.limits.zip,
      access: { projectId: ctx.projectId, imports: this.paths.imports },
    });
    try {
      progress('scan', 0, source.paths.length);
      const format = req.format ?? detectFormat(source.paths);
      if (format === undefined) {
        throw new PlatformError(
          'invalid_input',
          `cannot tell the format of ${source.origin}: no data.yaml, labels/*.txt, COCO .json or VOC .xml found; pass format yolo, coco or voc`,
        );
      }
      const parsed = await parseSource(format, source, req.classNames);
      progress('scan', source.paths.length, source.paths.length);
      const issues: FormatIssue[] = [...parsed.issues];
      const processed = await this.ingestImages(ctx, parsed, source, issues, progress);
      const kept = dedupe(processed, issues);
      if (kept.length === 0) {
        const report = buildReport({
          format,
          origin: source.origin,
          files: source.paths.length,
          imagesFound: parsed.images.length,
          kept: [],
          issues,
        });
        throw new PlatformError(
          'invalid_input',
          `nothing to import from ${source.origin}: no valid image found (${report.counts.errors} errors); fix the dataset and retry`,
          {
            report,
          },
        );
      }
      const honour = req.split === undefined && kept.some((k) => k.sourceSplit !== undefined);
      const ratios = req.split ?? DEFAULT_SPLIT;
      const images: VersionImage[] = kept.map((k) => ({
        ...k.image,
        split: honour && k.sourceSplit !== undefined ? k.sourceSplit : splitForHash(k.image.sha256, ratios),
      }));
      await this.storeLabels(ctx, images);
      await this.addThumbnails(ctx, images, parsed.classNames, (done, total) =>
        progress('thumbnails', done, total),
      );
      const report = buildReport({
        format,
        origin: source.origin,
        files: source.paths.length,
        imagesFound: parsed.images.length,
        kept: images,
        issues,
      });
      progress('save', 0, 1);
      const result = await this.createVersion(ctx, {
        name: req.name,
        description: req.description,
        tags: req.tags,
        classNames: parsed.classNames,
        images,
        report,
        ratios,
        splitMode: honour ? 'source' : 'hash',
        lineage: { kind: 'import', format, origin: source.origin },
        reason: 'import',
      });
      progress('save', 1, 1);
      this.events.emit({
        type: 'dataset.imported',
        projectId: ctx.projectId,
        at: this.now(),
        datasetId: result.version.datasetId,
        name: req.name,
        version: result.version.version,
        images: images.length,
        boxes: result.version.stats.boxes,
        issues: report.counts.errors + report.counts.warnings,
      });
      ctx.log.info(
        { ref: result.ref, images: images.length, errors: report.counts.errors },
        'dataset imported',
      );
      return result;
    } finally {
      await source.cleanup();
    }
  }

  /** A new version with the same images split again by content hash with new ratios. */
  async resplit(ctx: CallContext, ref: string, ratios: SplitRatios): Promise<VersionResult> {
    this.requireWriter(ctx, 'change datasets');
    const r = parse(splitRatiosSchema, ratios, 'split ratios');
    const { dataset, version } = await this.resolveRef(ctx, ref);
    const parentRef = `${dataset.name}@${version.version}`;
    const images = (await this.repo().listImages(version.id)).map((img) => ({
      ...img,
      split: splitForHash(img.sha256, r),
    }));
    const parentReport = JSON.parse(version.report) as ValidationReport;
    return this.createVersion(ctx, {
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
  async addSamples(
    ctx: CallContext,
    ref: string,
    samples: SampleInput[],
    opts: AddSamplesOptions = {},
  ): Promise<VersionResult> {
    this.requireWriter(ctx, 'change datasets');
    const list = samples.map((s, i) => parse(sampleSchema, s, `samples[${i}]`));
    const o = parse(addSamplesOptionsSchema, opts, 'addSamples options');
    if (list.length === 0)
      throw new PlatformError('invalid_input', 'no samples given; pass at least one { imageKey, boxes }');
    const { dataset, version } = await this.resolveRef(ctx, ref);
    const parentRef = `${dataset.name}@${version.version}`;
    const classNames = [...(JSON.parse(version.class_names) as string[])];
    const ratios = JSON.parse(version.split_ratios) as SplitRatios;
    const existing = await this.repo().listImages(version.id);
    const bySha = new Map(existing.map((img) => [img.sha256, img]));
    const issues: FormatIssue[] = [];
    const added: VersionImage[] = [];
    for (const s of list) {
      const bytes = await this.storage.getBuffer(s.imageKey).catch((err: unknown) => {
        if (isPlatformError(err)) throw err;
        throw new PlatformError(
          'not_found',
          `sample image "${s.imageKey}" is not in storage; upload it before adding it to ${parentRef}`,
        );
      });
      const probe = await probeImage(bytes, this.limits.maxImagePixels);
      if (!probe.ok) {
        issues.push({ kind: probe.kind, severity: 'error', file: s.imageKey, message: probe.message });
        continue;
      }
      const boxes: SourceImage['boxes'] = [];
      s.boxes.forEach((b, i) => {
        let classId = b.classId;
        if (b.className !== undefined) {
          classId = classNames.indexOf(b.className);
          if (classId < 0) classId = classNames.push(b.className) - 1;
        }
        if (classId === undefined || classId >= classNames.length) {
          issues.push({
            kind: 'unknown_class',
            severity: 'error',
            file: s.imageKey,
            at: `boxes[${i}]`,
            message: `class id ${classId} is not among the ${classNames.length} classes`,
          });
          return;
        }
        boxes.push({ classId, x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2 });
      });
      const norm = normalizeBoxes(
        { image: s.imageKey, units: 'normalized', boxes },
        probe.width,
        probe.height,
      );
      issues.push(...norm.issues);
      const stored = await this.storeImage(ctx, bytes, probe.ext);
      const prior = bySha.get(stored.sha256);
      if (prior !== undefined) {
        issues.push({
          kind: 'duplicate_image',
          severity: 'warning',
          file: s.imageKey,
          message: `same bytes as ${prior.sourcePath}; its boxes were replaced by the sample's`,
        });
      }
      const img: VersionImage = {
        ...stored,
        width: probe.width,
        height: probe.height,
        split: s.split ?? prior?.split ?? splitForHash(stored.sha256, ratios),
        boxes: norm.boxes,
        labelKey: '',
        labelSha256: '',
        labelBytes: 0,
        thumbnailKey: null,
        sourcePath: s.source ?? s.imageKey,
      };
      bySha.set(stored.sha256, img);
      added.push(img);
    }
    if (added.length === 0)
      throw new PlatformError(
        'invalid_input',
        `none of the ${list.length} samples is usable: ${issues
          .map((i) => `${i.file}: ${i.message}`)
          .slice(0, 3)
          .join('; ')}`,
      );
    await this.storeLabels(ctx, added);
    const images = [...bySha.values()];
    await this.addThumbnails(ctx, images, classNames);
    const report = buildReport({
      format: 'samples',
      origin: parentRef,
      files: list.length,
      imagesFound: list.length,
      kept: added,
      issues,
    });
    return this.createVersion(ctx, {
      name: dataset.name,
      classNames,
      images,
      report,
      ratios,
      splitMode: JSON.parse(version.stats).splitMode === 'source' ? 'source' : 'hash',
      lineage: { ...o.lineage, kind: 'samples', parent: parentRef, samples: added.length },
      note: o.note,
      reason: 'samples',
    });
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
    const req = parse(exportInputSchema, input, 'export');
    const target =
      req.to.path === undefined ? undefined : await resolveExportPath(req.to.path, this.paths.exports);
    const { dataset, version } = await this.resolveRef(ctx, ref);
    const classNames = JSON.parse(version.class_names) as string[];
    const images = await this.repo().listImages(version.id);
    const splits = SPLITS.filter((s) => images.some((i) => i.split === s));
    const entries: Array<{ path: string; data: () => Promise<Buffer>; compress: boolean }> = [];
    for (const img of images) {
      const imagePath = `images/${img.split}/${img.sha256}${path.posix.extname(img.imageKey)}`;
      entries.push({ path: imagePath, data: () => this.storage.getBuffer(img.imageKey), compress: false });
      if (req.format === 'yolo')
        entries.push({
          path: `labels/${img.split}/${img.sha256}.txt`,
          data: async () => Buffer.from(formatYoloLabels(img.boxes)),
          compress: true,
        });
    }
    if (req.format === 'yolo')
      entries.push({
        path: 'data.yaml',
        data: async () => Buffer.from(formatYoloDataYaml(classNames, splits)),
        compress: true,
      });
    else {
      const doc = buildCocoJson(
        classNames,
        images.map((img) => ({
          fileName: `images/${img.split}/${img.sha256}${path.posix.extname(img.imageKey)}`,
          width: img.width,
          height: img.height,
          boxes: img.boxes,
        })),
      );
      entries.push({
        path: 'annotations.json',
        data: async () => Buffer.from(JSON.stringify(doc)),
        compress: true,
      });
    }
    if (req.to.kind === 'folder') {
      const root = target!;
      const existing = await readdir(root).catch(() => []);
      if (existing.length > 0)
        throw new PlatformError(
          'conflict',
          `export folder "${req.to.path}" is not empty; choose a new or empty folder`,
        );
      await mkdir(root, { recursive: true, mode: 0o700 });
      // checked again once created: a link put in its place meanwhile is refused
      if ((await realpath(root)) !== root)
        throw new PlatformError(
          'conflict',
          `export folder "${req.to.path}" changed while it was created; retry with a new folder`,
        );
      for (const e of entries) {
        const file = path.join(root, ...e.path.split('/'));
        await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
        await writeFile(file, await e.data(), { flag: 'wx', mode: 0o600 });
      }
      return { format: req.format, images: images.length, location: root, kind: 'folder' };
    }
    const zip = new yazl.ZipFile();
    // entries are read only when the zip writer reaches them, so one image at a time is in memory
    for (const e of entries) {
      zip.addReadStreamLazy(e.path, { compress: e.compress }, (cb) => {
        e.data().then(
          (buf) => cb(null, Readable.from([buf])),
          (err: unknown) => cb(err, Readable.from([])),
        );
      });
    }
    zip.end();
    if (target !== undefined) {
      const file = target;
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      if ((await realpath(path.dirname(file))) !== path.dirname(file))
        throw new PlatformError(
          'conflict',
          `the folder of "${req.to.path}" changed while it was created; retry`,
        );
      // 'wx' never follows or replaces an existing file or link
      await pipeline(zip.outputStream, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
      return { format: req.format, images: images.length, location: file, kind: 'zip-file' };
    }
    const key = `exports/${ctx.projectId}/${dataset.name}-v${version.version}-${req.format}-${this.now()}.zip`;
    const body = new PassThrough();
    zip.outputStream.pipe(body);
    const put = await this.storage.put(key, body, { contentType: 'application/zip' });
    const url = await this.storage.presignGet(key, 3600);
    return {
      format: req.format,
      images: images.length,
      location: key,
      kind: 'zip-storage',
      url,
      bytes: put.size,
      sha256: put.sha256,
    };
  }

  private repo(): DatasetRepository {
    return new DatasetRepository(this.db.kysely);
  }

  private requireWriter(ctx: CallContext, what: string): void {
    if (!roleAtLeast(ctx.user.role, 'operator')) {
      throw new PlatformError(
        'forbidden',
        `${ctx.user.email} is a ${ctx.user.role} in project ${ctx.projectId}; operators and above may ${what}`,
      );
    }
  }

  private progressReporter(ctx: CallContext, name: string, onProgress?: (p: ImportProgress) => void) {
    let lastEmit = 0;
    return (phase: ImportPhase, done: number, total: number) => {
      onProgress?.({ phase, done, total });
      const t = this.now();
      if (done === 0 || done === total || t - lastEmit >= PROGRESS_EVERY_MS) {
        lastEmit = t;
        this.events.emit({
          type: 'dataset.import_progress',
          projectId: ctx.projectId,
          at: t,
          name,
          phase,
          done,
          total,
        });
      }
    };
  }

  /** Reads, checks and stores each image; returns the usable ones with their source split. */
  private async ingestImages(
    ctx: CallContext,
    parsed: ParsedDataset,
    source: OpenedSource,
    issues: FormatIssue[],
    progress: (phase: ImportPhase, done: number, total: number) => void,
  ): Promise<Array<{ image: Omit<VersionImage, 'split'>; sourceSplit?: Split; path: string }>> {
    const out: Array<{ image: Omit<VersionImage, 'split'>; sourceSplit?: Split; path: string }> = [];
    let done = 0;
    const total = parsed.images.length;
    progress('images', 0, total);
    await mapLimit(parsed.images, this.limits.concurrency, async (src) => {
      if (ctx.signal?.aborted)
        throw new PlatformError('unavailable', 'import cancelled; nothing was imported');
      try {
        let bytes: Buffer;
        try {
          bytes = await source.readBuffer(src.image);
        } catch (err) {
          issues.push({
            kind: 'unreadable_image',
            severity: 'error',
            file: src.image,
            message: `cannot read: ${(err as Error).message}`,
          });
          return;
        }
        const probe = await probeImage(bytes, this.limits.maxImagePixels);
        if (!probe.ok) {
          issues.push({ kind: probe.kind, severity: 'error', file: src.image, message: probe.message });
          return;
        }
        const norm = normalizeBoxes(src, probe.width, probe.height);
        issues.push(...norm.issues);
        const stored = await this.storeImage(ctx, bytes, probe.ext);
        out.push({
          path: src.image,
          sourceSplit: src.split,
          image: {
            ...stored,
            width: probe.width,
            height: probe.height,
            boxes: norm.boxes,
            labelKey: '',
            labelSha256: '',
            labelBytes: 0,
            thumbnailKey: null,
            sourcePath: src.image,
          },
        });
      } finally {
        progress('images', ++done, total);
      }
    });
    return out;
  }

  /** Stores bytes at `projects/<project>/images/<sha256>.<ext>` unless that object already exists (one project never reads another's). */
  private async storeImage(
    ctx: CallContext,
    bytes: Buffer,
    ext: string,
  ): Promise<{ sha256: string; imageKey: string; imageBytes: number }> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const imageKey = `${projectStoragePrefix(ctx.projectId)}images/${sha256}.${ext}`;
    const head = await this.storage.head(imageKey);
    if (head === undefined || head.size !== bytes.length)
      await this.storage.put(imageKey, bytes, { contentType: ext === 'jpg' ? 'image/jpeg' : `image/${ext}` });
    return { sha256, imageKey, imageBytes: bytes.length };
  }

  /** Stores each image's YOLO label text content-addressed at `projects/<project>/labels/<sha256>.txt` and fills in its key. */
  private async storeLabels(ctx: CallContext, images: VersionImage[]): Promise<void> {
    const stored = new Map<string, Promise<void>>();
    await mapLimit(images, this.limits.concurrency, async (img) => {
      const text = Buffer.from(formatYoloLabels(img.boxes));
      const sha = createHash('sha256').update(text).digest('hex');
      const key = `${projectStoragePrefix(ctx.projectId)}labels/${sha}.txt`;
      let pending = stored.get(key);
      if (pending === undefined) {
        pending = (async () => {
          if ((await this.storage.head(key)) === undefined)
            await this.storage.put(key, text, { contentType: 'text/plain' });
        })();
        stored.set(key, pending);
      }
      await pending;
      img.labelKey = key;
      img.labelSha256 = sha;
      img.labelBytes = text.length;
    });
  }

  /** Gives the first images by content hash a thumbnail with boxes drawn, up to the configured count. */
  private async addThumbnails(
    ctx: CallContext,
    images: VersionImage[],
    classNames: string[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<void> {
    const have = images.filter((i) => i.thumbnailKey !== null).length;
    const want = [...images]
      .filter((i) => i.thumbnailKey === null)
      .sort((a, b) => a.sha256.localeCompare(b.sha256))
      .slice(0, Math.max(0, this.limits.thumbnails - have));
    let done = 0;
    onProgress?.(0, want.length);
    await mapLimit(want, this.limits.concurrency, async (img) => {
      try {
        const thumb = await renderThumbnail(
          await this.storage.getBuffer(img.imageKey),
          img.width,
          img.height,
          img.boxes,
          classNames,
        );
        const sha = createHash('sha256').update(thumb).digest('hex');
        const key = `${projectStoragePrefix(ctx.projectId)}thumbnails/${sha}.jpg`;
        await this.storage.put(key, thumb, { contentType: 'image/jpeg' });
        img.thumbnailKey = key;
      } catch (err) {
        this.log.warn(
          { image: img.imageKey, err: (err as Error).message },
          'thumbnail failed; the version is kept without it',
        );
      }
      onProgress?.(++done, want.length);
    });
  }

  /** The version a call with this idempotency key created before (a retried step), if any. */
  private async versionCreatedEarlier(ctx: CallContext): Promise<VersionResult | undefined> {
    const earlier = await priorEffect<{ versionId: string }>(this.db.kysely, ctx, VERSION_EFFECT);
    const done =
      earlier === undefined ? undefined : await this.repo().findVersionById(ctx.projectId, earlier.versionId);
    if (done === undefined) return undefined;
    const info = versionInfo(done.dataset, done.version);
    ctx.log.info(
      { ref: info.ref },
      'dataset version already created under this idempotency key; returning it',
    );
    return { ref: info.ref, version: info, report: JSON.parse(done.version.report) as ValidationReport };
  }

  /** Writes a new version (and the dataset on first import) and its image rows in one transaction, with the search update. */
  private async createVersion(ctx: CallContext, input: NewVersionInput): Promise<VersionResult> {
    const at = this.now();
    const stats = computeStats(input.classNames, input.images, input.splitMode);
    const images = [...input.images].sort((a, b) => a.sha256.localeCompare(b.sha256));
    const write = () =>
      this.db.transaction(async (trx) => {
        const repo = new DatasetRepository(trx);
        const earlier = await priorEffect<{ versionId: string }>(trx, ctx, VERSION_EFFECT);
        const done =
          earlier === undefined ? undefined : await repo.findVersionById(ctx.projectId, earlier.versionId);
        if (done !== undefined) return { ...done, replayed: true };
        let dataset = await repo.findDataset(ctx.projectId, input.name);
        let number: number;
        if (dataset === undefined) {
          number = 1;
          dataset = {
            id: newId('ds'),
            project_id: ctx.projectId,
            name: input.name,
            description: input.description ?? '',
            tags: JSON.stringify(input.tags ?? []),
            latest_version: 1,
            created_by: ctx.user.userId,
            created_at: at,
            updated_at: at,
          };
          await repo.insertDataset(dataset);
        } else {
          number = dataset.latest_version + 1;
          const patch = {
            latest_version: number,
            updated_at: at,
            ...(input.description !== undefined ? { description: input.description } : {}),
            ...(input.tags !== undefined ? { tags: JSON.stringify(input.tags) } : {}),
          };
          if (!(await repo.advanceLatest(dataset.id, dataset.latest_version, patch))) {
            throw new PlatformError(
              'conflict',
              `another change to dataset "${input.name}" landed first; retry`,
            );
          }
          dataset = { ...dataset, ...patch };
        }
        const version: VersionRow = {
          id: newId('dsv'),
          project_id: ctx.projectId,
          dataset_id: dataset.id,
          version: number,
          class_names: JSON.stringify(input.classNames),
          stats: JSON.stringify(stats),
          report: JSON.stringify(input.report),
          split_ratios: JSON.stringify(input.ratios),
          lineage: JSON.stringify(input.lineage),
          note: input.note ?? null,
          image_count: images.length,
          box_count: stats.boxes,
          created_by: ctx.user.userId,
          created_at: at,
        };
        await repo.insertVersion(version, images);
        await recordEffect(trx, ctx, VERSION_EFFECT, { versionId: version.id }, at);
        await enqueueIndex(trx, { op: 'upsert', doc: datasetSearchDoc(dataset, version) });
        return { dataset, version, replayed: false };
      });
    let written: { dataset: DatasetRow; version: VersionRow; replayed: boolean };
    try {
      written = await write();
    } catch (err) {
      if (isPlatformError(err)) throw err;
      if (/unique|duplicate/i.test((err as Error).message))
        throw new PlatformError('conflict', `another change to dataset "${input.name}" landed first; retry`);
      throw err;
    }
    const info = versionInfo(written.dataset, written.version);
    if (written.replayed)
      return { ref: info.ref, version: info, report: JSON.parse(written.version.report) as ValidationReport };
    this.events.emit({
      type: 'dataset.version_created',
      projectId: ctx.projectId,
      at,
      datasetId: info.datasetId,
      name: info.name,
      version: info.version,
      reason: input.reason,
    });
    return { ref: info.ref, version: info, report: input.report };
  }
}

/** The idempotent-effect kind of a created dataset version. */
export const VERSION_EFFECT = 'dataset.version';

/** Every dataset's search document (all projects), for a full reindex. */
export async function* datasetSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  for await (const { dataset, version } of new DatasetRepository(db.kysely).allDatasetsWithLatest())
    yield datasetSearchDoc(dataset, version);
}

function versionInfo(dataset: DatasetRow, v: VersionRow): DatasetVersionInfo {
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

function parseSource(
  format: DatasetFormat,
  source: OpenedSource,
  classNames?: string[],
): Promise<ParsedDataset> {
  switch (format) {
    case 'yolo':
      return parseYolo(source);
    case 'coco':
      return parseCoco(source);
    case 'voc':
      return parseVoc(source, { classNames });
  }
}

/** Keeps the first image (by source path) of each content hash and reports the others as duplicates. */
function dedupe<T extends { image: { sha256: string }; path: string }>(
  items: T[],
  issues: FormatIssue[],
): T[] {
  const first = new Map<string, T>();
  for (const item of [...items].sort((a, b) => a.path.localeCompare(b.path))) {
    const prior = first.get(item.image.sha256);
    if (prior === undefined) first.set(item.image.sha256, item);
    else
      issues.push({
        kind: 'duplicate_image',
        severity: 'error',
        file: item.path,
        message: `same content (sha256 ${item.image.sha256.slice(0, 12)}…) as ${prior.path}; kept that one`,
      });
  }
  return [...first.values()];
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new PlatformError('invalid_input', `invalid ${what}: ${describeZodError(r.error)}`);
  return r.data;
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
