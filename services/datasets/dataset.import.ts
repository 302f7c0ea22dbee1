import type { CallContext } from '../../core/context.js';
import { requireRole } from '../../core/context.js';
import { isPlatformError, PlatformError } from '../../core/errors.js';
import {
  detectFormat,
  normalizeBoxes,
  type FormatIssue,
  type SourceImage,
} from '../../vision/formats/index.js';
import type { Storage } from '../infra/storage/port.js';
import { dedupe, parseSource, type DatasetIngest } from './dataset.ingest.js';
import type { DatasetRepository, DatasetRow, VersionImage, VersionRow } from './dataset.repository.js';
import type { DatasetVersionWriter } from './dataset.versions.js';
import type { DatasetEvent, ImportPhase } from './events.js';
import { probeImage } from './images.js';
import type { DatasetLimits, ImportProgress, VersionResult } from './model.js';
import { buildReport } from './report.js';
import type { DatasetPathPolicy } from './roots.js';
import {
  addSamplesOptionsSchema,
  importInputSchema,
  parseInput,
  sampleSchema,
  type AddSamplesOptions,
  type ImportInput,
  type SampleInput,
} from './schemas.js';
import { openSource } from './sources.js';
import { DEFAULT_SPLIT, splitForHash, type SplitRatios } from './split.js';

const PROGRESS_EVERY_MS = 250;

/** What the importer uses of the service and its rooms. */
export interface DatasetImporterDeps {
  storage: Storage;
  events: { emit(event: DatasetEvent): void };
  now: () => number;
  limits: DatasetLimits;
  paths: DatasetPathPolicy;
  repo: DatasetRepository;
  ingest: DatasetIngest;
  versions: DatasetVersionWriter;
  resolveRef: (ctx: CallContext, ref: string) => Promise<{ dataset: DatasetRow; version: VersionRow }>;
}

/** The use cases that bring new images into a dataset: an import from a source, and reviewed samples added to a version. */
export class DatasetImporter {
  constructor(private readonly o: DatasetImporterDeps) {}

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
    requireRole(ctx, 'operator', 'importing datasets');
    const req = parseInput(importInputSchema, input, 'import');
    // a retry of an import that already created its version (same idempotency key) returns that version
    const earlier = await this.o.versions.createdEarlier(ctx);
    if (earlier !== undefined) return earlier;
    const progress = this.progressReporter(ctx, req.name, onProgress);
    const source = await openSource(req.source, {
      storage: this.o.storage,
      zipLimits: this.o.limits.zip,
      access: { projectId: ctx.projectId, imports: this.o.paths.imports },
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
      const processed = await this.o.ingest.ingestImages(ctx, parsed, source, issues, progress);
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
      await this.o.ingest.storeLabels(ctx, images);
      await this.o.ingest.addThumbnails(ctx, images, parsed.classNames, (done, total) =>
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
      const result = await this.o.versions.create(ctx, {
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
      this.o.events.emit({
        type: 'dataset.imported',
        projectId: ctx.projectId,
        at: this.o.now(),
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
    requireRole(ctx, 'operator', 'changing datasets');
    const list = samples.map((s, i) => parseInput(sampleSchema, s, `samples[${i}]`));
    const o = parseInput(addSamplesOptionsSchema, opts, 'addSamples options');
    if (list.length === 0)
      throw new PlatformError('invalid_input', 'no samples given; pass at least one { imageKey, boxes }');
    const { dataset, version } = await this.o.resolveRef(ctx, ref);
    const parentRef = `${dataset.name}@${version.version}`;
    const classNames = [...(JSON.parse(version.class_names) as string[])];
    const ratios = JSON.parse(version.split_ratios) as SplitRatios;
    const existing = await this.o.repo.listImages(version.id);
    const bySha = new Map(existing.map((img) => [img.sha256, img]));
    const issues: FormatIssue[] = [];
    const added: VersionImage[] = [];
    for (const s of list) {
      const bytes = await this.o.storage.getBuffer(s.imageKey).catch((err: unknown) => {
        if (isPlatformError(err)) throw err;
        throw new PlatformError(
          'not_found',
          `sample image "${s.imageKey}" is not in storage; upload it before adding it to ${parentRef}`,
        );
      });
      const probe = await probeImage(bytes, this.o.limits.maxImagePixels);
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
      const stored = await this.o.ingest.storeImage(ctx, bytes, probe.ext);
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
    await this.o.ingest.storeLabels(ctx, added);
    const images = [...bySha.values()];
    await this.o.ingest.addThumbnails(ctx, images, classNames);
    const report = buildReport({
      format: 'samples',
      origin: parentRef,
      files: list.length,
      imagesFound: list.length,
      kept: added,
      issues,
    });
    return this.o.versions.create(ctx, {
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

  private progressReporter(ctx: CallContext, name: string, onProgress?: (p: ImportProgress) => void) {
    let lastEmit = 0;
    return (phase: ImportPhase, done: number, total: number) => {
      onProgress?.({ phase, done, total });
      const t = this.o.now();
      if (done === 0 || done === total || t - lastEmit >= PROGRESS_EVERY_MS) {
        lastEmit = t;
        this.o.events.emit({
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
}
