import { z } from 'zod';
import {
  evaluateDetector,
  EVALUATION_SETTINGS,
  type EvaluationImage,
} from '../../vision/evaluate-detector.js';
import { SPLITS, type Split } from '../../vision/formats/index.js';
import { parseClassNames } from '../../vision/onnx-metadata.js';
import { loadDetector, type Detector } from '../../vision/pipeline.js';
import { requireRole, type CallContext } from '../../core/context.js';
import { page } from '../../core/paging.js';
import type { DatasetService } from '../datasets/dataset.service.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { priorEffect, recordEffect } from '../effects.js';
import { newId } from '../../core/ids.js';
import type { Db } from '../infra/db/port.js';
import type { Storage } from '../infra/storage/port.js';
import type { Logger } from '../../core/log.js';
import { EvaluationRepository } from './evaluation.repository.js';
import { readModelFile } from './model-file.js';
import type { ModelEvent } from './events.js';
import type { ModelRegistry } from './model.registry.js';
import type { ModelVersion } from './model.js';
import type { ModelEvaluation, EvaluationProgress } from './model.js';

/** Input of `ModelEvaluationService.evaluate`. */
export const evaluateInputSchema = z.object({
  modelVersion: z.string().trim().min(1).max(200),
  split: z.enum(SPLITS).default('test'),
  /** `name` (latest version) or `name@N`; the dataset version of the model's lineage when absent. */
  dataset: z.string().trim().min(1).max(200).optional(),
  maxImages: z.number().int().min(1).optional(),
  conf: z.number().min(0).max(1).default(0.25),
});
export type EvaluateInput = z.input<typeof evaluateInputSchema>;

/** Bounds of the evaluation service. */
export interface EvaluationLimits {
  /** Images evaluated when the caller names no cap. */
  defaultMaxImages: number;
  /** The highest cap a caller may ask for. */
  maxImages: number;
}

/** Defaults: 500 images unless asked, never more than 5000 in one evaluation. */
export const DEFAULT_EVALUATION_LIMITS: EvaluationLimits = { defaultMaxImages: 500, maxImages: 5000 };

/** Dependencies of the evaluation service. */
export interface ModelEvaluationServiceDeps {
  db: Db;
  storage: Storage;
  models: Pick<ModelRegistry, 'get'>;
  datasets: Pick<DatasetService, 'get' | 'listImages'>;
  events: EventSink<ModelEvent>;
  log: Logger;
  now?: () => number;
  limits?: Partial<EvaluationLimits>;
}

const { minScore: MIN_SCORE, nmsIou: NMS_IOU, maxDet: MAX_DET } = EVALUATION_SETTINGS;
const PAGE = 100;
const PROGRESS_EVERY_MS = 250;

const norm = (s: string): string => s.trim().toLowerCase();

/**
 * Evaluates registered model versions on a dataset version's split with the real inference
 * pipeline (the version's model.onnx, sha256-checked, through letterbox, onnxruntime, decoding and
 * NMS) and COCO-style scoring, and keeps every evaluation as history of the version.
 */
export class ModelEvaluationService {
  private readonly db: Db;
  private readonly repo: EvaluationRepository;
  private readonly storage: Storage;
  private readonly models: ModelEvaluationServiceDeps['models'];
  private readonly datasets: ModelEvaluationServiceDeps['datasets'];
  private readonly events: EventSink<ModelEvent>;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly limits: EvaluationLimits;

  constructor(deps: ModelEvaluationServiceDeps) {
    this.db = deps.db;
    this.repo = new EvaluationRepository(deps.db.kysely);
    this.storage = deps.storage;
    this.models = deps.models;
    this.datasets = deps.datasets;
    this.events = deps.events;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.limits = { ...DEFAULT_EVALUATION_LIMITS, ...deps.limits };
  }

  /**
   * Runs the version on up to `maxImages` images of the split (stable order) and records the result.
   * Needs the operator role: it spends compute and adds to the version's history.
   */
  async evaluate(
    ctx: CallContext,
    input: EvaluateInput,
    onProgress?: (p: EvaluationProgress) => void,
  ): Promise<ModelEvaluation> {
    requireRole(ctx, 'operator', 'evaluating a model');
    const parsed = evaluateInputSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `invalid evaluation request: ${describeZodError(parsed.error)}`,
      );
    const req = parsed.data;
    // a retried step (same idempotency key) gets the evaluation it recorded the first time
    const earlier = await priorEffect<{ evaluationId: string }>(this.db.kysely, ctx, EVALUATION_EFFECT);
    if (earlier !== undefined) {
      const recorded = await this.repo.find(ctx.projectId, earlier.evaluationId);
      if (recorded !== undefined) return recorded;
    }
    const maxImages = req.maxImages ?? this.limits.defaultMaxImages;
    if (maxImages > this.limits.maxImages) {
      throw new PlatformError(
        'invalid_input',
        `maxImages ${maxImages} is above the limit of ${this.limits.maxImages}; evaluate on fewer images`,
      );
    }
    const startedAt = this.now();
    const t0 = performance.now();
    const version = await this.models.get(ctx, req.modelVersion);
    const datasetRef = req.dataset ?? version.lineage.dataset;
    if (datasetRef === null) {
      throw new PlatformError(
        'invalid_input',
        `model ${version.ref} records no training dataset; name one with dataset "name" or "name@version"`,
      );
    }
    const dataset = await this.datasets.get(ctx, datasetRef);
    const classMap = matchClasses(version, dataset.ref, dataset.classNames);
    const imagesTotal = (await this.datasets.listImages(ctx, dataset.ref, { split: req.split, limit: 1 }))
      .total;
    if (imagesTotal === 0) {
      const counts = Object.entries(dataset.stats.splits)
        .map(([s, c]) => `${s} ${c.images}`)
        .join(', ');
      throw new PlatformError(
        'invalid_input',
        `dataset ${dataset.ref} has no images in its ${req.split} split (${counts}); pick another split or re-split the dataset`,
      );
    }
    const total = Math.min(imagesTotal, maxImages);

    const bytes = await readModelFile(this.storage, version, 'evaluated');
    const detector = await loadDetector(bytes, {
      layout: version.model.layout,
      names: version.classNames,
      inputSize: version.model.inputSize,
    });
    const loadMs = performance.now() - t0;
    const storage = this.storage;
    const datasets = this.datasets;
    async function* pages(): AsyncIterable<EvaluationImage> {
      for (let offset = 0; offset < total; offset += PAGE) {
        const page = await datasets.listImages(ctx, dataset.ref, {
          split: req.split,
          offset,
          limit: Math.min(PAGE, total - offset),
        });
        if (page.items.length === 0) return;
        for (const image of page.items)
          yield { bytes: () => storage.getBuffer(image.imageKey), boxes: () => image.boxes };
      }
    }
    let scored: Awaited<ReturnType<typeof evaluateDetector>>;
    try {
      checkDetector(detector, version);
      const progress = this.progressReporter(ctx, version, dataset.ref, req.split, onProgress);
      progress(0, total);
      if (ctx.signal?.aborted)
        throw new PlatformError(
          'conflict',
          `the evaluation of ${version.ref} was cancelled before it started`,
        );
      scored = await evaluateDetector(detector, pages(), {
        classMap,
        classCount: dataset.classNames.length,
        conf: req.conf,
        onImage: (done) => {
          progress(done, total);
          if (ctx.signal?.aborted && done < total)
            throw new PlatformError(
              'conflict',
              `the evaluation of ${version.ref} was cancelled after ${done} of ${total} images`,
            );
        },
      });
    } finally {
      await detector.dispose();
    }
    const { evaluation: result, confusion, inferenceMs, scoringMs, images } = scored;
    const finishedAt = this.now();
    const round = (v: number): number => Math.round(v * 1000) / 1000;
    const evaluation: ModelEvaluation = {
      id: newId('ev'),
      projectId: ctx.projectId,
      modelVersionId: version.id,
      model: version.ref,
      modelSha256: version.model.sha256,
      dataset: dataset.ref,
      split: req.split,
      images,
      imagesTotal,
      metrics: {
        mAP50: result.map50,
        mAP50_95: result.map5095,
        precision: result.precision,
        recall: result.recall,
      },
      conf: req.conf,
      perClass: result.perClass.map((c) => ({
        className: dataset.classNames[c.classId] ?? String(c.classId),
        instances: c.numGt,
        detections: c.numDet,
        ap50: c.numGt > 0 ? c.ap50 : null,
        ap50_95: c.numGt > 0 ? c.ap5095 : null,
        precision: c.precision,
        recall: c.recall,
        ...(c.numGt > 0 ? { pr50: c.pr50.map(round) } : {}),
      })),
      settings: {
        conf: req.conf,
        iou: NMS_IOU,
        minScore: MIN_SCORE,
        maxDet: MAX_DET,
        maxImages,
        ignoredModelClasses: version.classNames.filter((_, i) => (classMap[i] ?? -1) < 0),
      },
      timing: {
        loadMs: round(loadMs),
        inferenceMs: round(inferenceMs),
        perImageMs: round(images > 0 ? inferenceMs / images : 0),
        scoringMs: round(scoringMs),
        totalMs: round(performance.now() - t0),
      },
      confusion: {
        classes: confusion.classIds.map((i) => dataset.classNames[i] ?? String(i)),
        counts: confusion.counts,
      },
      createdBy: ctx.user.userId,
      startedAt,
      finishedAt,
    };
    await this.db.transaction(async (trx) => {
      await this.repo.in(trx).insert(evaluation);
      await recordEffect(trx, ctx, EVALUATION_EFFECT, { evaluationId: evaluation.id }, finishedAt);
    });
    ctx.log.info(
      { model: version.ref, dataset: dataset.ref, split: req.split, images, mAP50: evaluation.metrics.mAP50 },
      'model evaluated',
    );
    this.events.emit({ type: 'model.evaluated', projectId: ctx.projectId, at: finishedAt, evaluation });
    return evaluation;
  }

  /** Evaluations of a version (any reference the registry resolves), newest first. */
  async list(
    ctx: CallContext,
    modelVersion: string,
    opts: { limit?: number } = {},
  ): Promise<ModelEvaluation[]> {
    const version = await this.models.get(ctx, modelVersion);
    return this.repo.listForVersion(ctx.projectId, version.id, page(opts, { default: 20, max: 200 }).limit);
  }

  private progressReporter(
    ctx: CallContext,
    version: ModelVersion,
    dataset: string,
    split: Split,
    onProgress?: (p: EvaluationProgress) => void,
  ) {
    let lastEmit = 0;
    return (done: number, total: number) => {
      onProgress?.({ done, total });
      const t = this.now();
      if (done === 0 || done === total || t - lastEmit >= PROGRESS_EVERY_MS) {
        lastEmit = t;
        this.events.emit({
          type: 'model.evaluation_progress',
          projectId: ctx.projectId,
          at: t,
          versionId: version.id,
          model: version.ref,
          dataset,
          split,
          done,
          total,
        });
      }
    };
  }
}

/**
 * Maps each model class index to the dataset's class index by name (case and surrounding spaces
 * ignored), or -1 for a model class the dataset lacks. Every dataset class must be one the model
 * detects: otherwise its ground truth could never be found and the numbers would mislead.
 */
export function matchClasses(
  version: Pick<ModelVersion, 'ref' | 'classNames'>,
  datasetRef: string,
  datasetClasses: string[],
): number[] {
  const byName = new Map(datasetClasses.map((c, i) => [norm(c), i]));
  const modelNames = new Set(version.classNames.map(norm));
  const missing = datasetClasses.filter((c) => !modelNames.has(norm(c)));
  if (missing.length > 0) {
    throw new PlatformError(
      'invalid_input',
      `class names do not match: dataset ${datasetRef} has ${missing.map((c) => `"${c}"`).join(', ')}, which model ${version.ref} does not detect (model classes: ${version.classNames.join(', ') || 'none'}; dataset classes: ${datasetClasses.join(', ')}); evaluate on a dataset version with the model's classes`,
      { modelClasses: version.classNames, datasetClasses, missing },
    );
  }
  return version.classNames.map((c) => byName.get(norm(c)) ?? -1);
}

/** The loaded ONNX must agree with the registry: class names in its metadata and the class count of its output. */
function checkDetector(detector: Detector, version: ModelVersion): void {
  const metaNames =
    detector.metadata.names === undefined ? undefined : parseClassNames(detector.metadata.names);
  if (metaNames !== undefined && metaNames.map(norm).join('\n') !== version.classNames.map(norm).join('\n')) {
    throw new PlatformError(
      'invalid_input',
      `class names do not match: the ONNX metadata of ${version.ref} says ${metaNames.join(', ')} but the registry says ${version.classNames.join(', ')}; re-export the model or fix the registry entry`,
      { metadataClasses: metaNames, registryClasses: version.classNames },
    );
  }
  const shape = detector.outputShapes[detector.outputName] ?? [];
  const nc =
    detector.layout === 'ultralytics'
      ? (shape[1] ?? 0) - 4
      : detector.layout === 'yolox'
        ? (shape[2] ?? 0) - 5
        : undefined;
  if (nc !== undefined && nc !== version.classNames.length) {
    throw new PlatformError(
      'invalid_input',
      `class names do not match: the model file of ${version.ref} outputs ${nc} classes ([${shape.join(', ')}]) but the registry lists ${version.classNames.length} (${version.classNames.join(', ')}); re-export the model or fix the registry entry`,
    );
  }
}

/** The idempotent-effect kind of a recorded evaluation. */
const EVALUATION_EFFECT = 'model.evaluation';
