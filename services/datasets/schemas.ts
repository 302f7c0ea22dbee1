import { z } from 'zod';
import { DATASET_FORMATS, SPLITS } from '../../vision/formats/index.js';

/** Dataset names: lower-case letters, digits, `.`, `_`, `-`, starting with a letter or digit, at most 64 characters. */
export const DATASET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A dataset name. */
export const datasetNameSchema = z
  .string()
  .regex(DATASET_NAME, 'must match ^[a-z0-9][a-z0-9._-]{0,63}$ (e.g. "helmets-v2")');

/** Train/val/test shares, each 0..1, not all zero. */
export const splitRatiosSchema = z
  .object({ train: z.number().min(0).max(1), val: z.number().min(0).max(1), test: z.number().min(0).max(1) })
  .refine((r) => r.train + r.val + r.test > 0, 'at least one share must be above 0');

/** Input of `DatasetService.import`. */
export const importInputSchema = z.object({
  name: datasetNameSchema,
  description: z.string().max(4000).optional(),
  tags: z.array(z.string().min(1).max(64)).max(32).optional(),
  source: z.union([
    z.object({ kind: z.literal('folder'), path: z.string().min(1) }),
    z.object({ kind: z.literal('zip'), path: z.string().min(1) }),
    z.object({ kind: z.literal('zip'), buffer: z.instanceof(Buffer) }),
    z.object({ kind: z.literal('storage'), prefix: z.string() }),
  ]),
  format: z.enum(DATASET_FORMATS).optional(),
  /** Re-split every image by content hash with these ratios, even when the source has split folders. */
  split: splitRatiosSchema.optional(),
  /** For VOC: the class list; names outside it are reported. */
  classNames: z.array(z.string().min(1)).min(1).optional(),
});

const sampleBoxSchema = z
  .object({
    classId: z.number().int().min(0).optional(),
    className: z.string().min(1).optional(),
    x1: z.number(),
    y1: z.number(),
    x2: z.number(),
    y2: z.number(),
  })
  .refine((b) => b.classId !== undefined || b.className !== undefined, 'each box needs classId or className');

/** One reviewed sample for `addSamples`: an image already in storage and its boxes (normalised corners). */
export const sampleSchema = z.object({
  imageKey: z.string().min(1),
  boxes: z.array(sampleBoxSchema),
  split: z.enum(SPLITS).optional(),
  /** Where it came from, e.g. `feedback/fb_123`. */
  source: z.string().max(500).optional(),
});

/** Options of `addSamples`. */
export const addSamplesOptionsSchema = z.object({
  note: z.string().max(2000).optional(),
  lineage: z.record(z.string(), z.unknown()).optional(),
});

/** Options of `listImages`. */
export const listImagesSchema = z.object({
  split: z.enum(SPLITS).optional(),
  offset: z.number().int().min(0).default(0),
  limit: z.number().int().min(1).max(1000).default(50),
});

/** Options of `export`. */
export const exportInputSchema = z.object({
  format: z.enum(['yolo', 'coco']),
  to: z.union([
    z.object({ kind: z.literal('folder'), path: z.string().min(1) }),
    z.object({ kind: z.literal('zip'), path: z.string().min(1).optional() }),
  ]),
});

export type ImportInput = z.input<typeof importInputSchema>;
export type SampleInput = z.input<typeof sampleSchema>;
export type AddSamplesOptions = z.input<typeof addSamplesOptionsSchema>;
export type ListImagesOptions = z.input<typeof listImagesSchema>;
export type ExportInput = z.input<typeof exportInputSchema>;

export { parseInput } from '../../core/errors.js';
