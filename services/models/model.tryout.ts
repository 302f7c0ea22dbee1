import { z } from 'zod';
import { requireRole, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import { decodeImage } from '../../vision/letterbox.js';
import { loadDetector } from '../../vision/pipeline.js';
import type { Storage } from '../infra/storage/port.js';
import { readModelFile } from './model-file.js';
import type { ModelRegistry } from './model.registry.js';

/** Options of one try: the confidence to keep a box at. */
export const tryImageOptionsSchema = z.object({
  conf: z.number().min(0.01).max(1).default(0.25),
});
export type TryImageOptions = z.input<typeof tryImageOptionsSchema>;

/** One box found on the tried image, in its pixels. */
export interface TriedDetection {
  className: string;
  classId: number;
  score: number;
  /** x1, y1, x2, y2 in image pixels. */
  box: [number, number, number, number];
}

/** What a try returns: the boxes and how long the model took; nothing is stored. */
export interface TryImageResult {
  model: string;
  width: number;
  height: number;
  conf: number;
  detections: TriedDetection[];
  inferenceMs: number;
}

/** Bounds of `ModelTryout`. */
export interface TryoutLimits {
  /** Largest encoded image accepted. */
  maxBytes: number;
  /** Largest decoded image (width x height). */
  maxPixels: number;
  /** Tries running at once in this process; more are refused with `unavailable`. */
  maxConcurrent: number;
}

/** Defaults: 10 MB, 25 megapixels, two at a time. */
export const DEFAULT_TRYOUT_LIMITS: TryoutLimits = {
  maxBytes: 10 * 1024 * 1024,
  maxPixels: 25_000_000,
  maxConcurrent: 2,
};

/** Dependencies of `ModelTryout`. */
export interface ModelTryoutDeps {
  storage: Storage;
  models: Pick<ModelRegistry, 'get'>;
  limits?: Partial<TryoutLimits>;
}

const NMS_IOU = 0.45;
const MAX_DET = 300;

/**
 * Runs a registered version on one image a person sends (the model page's "try on an image"): the
 * version's model.onnx, sha256-checked, through the real inference pipeline. A read: the image is
 * decoded in memory and never stored, and the version must belong to the caller's project.
 */
export class ModelTryout {
  private readonly storage: Storage;
  private readonly models: ModelTryoutDeps['models'];
  private readonly limits: TryoutLimits;
  private running = 0;

  constructor(deps: ModelTryoutDeps) {
    this.storage = deps.storage;
    this.models = deps.models;
    this.limits = { ...DEFAULT_TRYOUT_LIMITS, ...deps.limits };
  }

  /** Detects objects on `image` (JPEG, PNG or WebP bytes) with the version `ref`. */
  async detect(
    ctx: CallContext,
    ref: string,
    image: Buffer,
    options: TryImageOptions = {},
  ): Promise<TryImageResult> {
    requireRole(ctx, 'viewer', 'trying a model on an image');
    const parsed = tryImageOptionsSchema.safeParse(options);
    if (!parsed.success)
      throw new PlatformError('invalid_input', `invalid try options: ${describeZodError(parsed.error)}`);
    const { conf } = parsed.data;
    const version = await this.models.get(ctx, ref);
    if (image.length === 0)
      throw new PlatformError('invalid_input', 'the image is empty; send a JPEG, PNG or WebP file');
    if (image.length > this.limits.maxBytes)
      throw new PlatformError(
        'invalid_input',
        `the image is ${mb(image.length)}, over the limit of ${mb(this.limits.maxBytes)}; send a smaller image`,
      );
    const raw = await decodeImage(image, { maxPixels: this.limits.maxPixels });
    if (this.running >= this.limits.maxConcurrent)
      throw new PlatformError(
        'unavailable',
        `${this.running} images are being tried already; try again in a few seconds`,
      );
    this.running++;
    try {
      const detector = await loadDetector(await readModelFile(this.storage, version, 'run'), {
        layout: version.model.layout,
        names: version.classNames,
        inputSize: version.model.inputSize,
      });
      try {
        const t = performance.now();
        const found = await detector.detect(raw, { conf, iou: NMS_IOU, maxDet: MAX_DET });
        const inferenceMs = Math.round((performance.now() - t) * 10) / 10;
        return {
          model: version.ref,
          width: raw.width,
          height: raw.height,
          conf,
          inferenceMs,
          detections: found.map((d) => ({
            className: version.classNames[d.classId] ?? d.className,
            classId: d.classId,
            score: Math.round(d.score * 1000) / 1000,
            box: d.box.map((v) => Math.round(v * 10) / 10) as TriedDetection['box'],
          })),
        };
      } finally {
        await detector.dispose();
      }
    } finally {
      this.running--;
    }
  }
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
