import path from 'node:path/posix';
import { z } from 'zod';
import { ImagePathIndex, isImagePath, splitFromFileName, splitFromPath } from './paths.js';
import type { LabeledBox } from './boxes.js';
import type { DatasetFiles, FormatIssue, ParsedDataset, SourceBox, SourceImage, Split } from './types.js';
import { excerpt } from './excerpt.js';

const id = z.union([z.number(), z.string()]);

/** The top level of a COCO detection file; items are validated one by one so one bad item loses only itself. */
const cocoFileSchema = z.object({
  images: z.array(z.unknown()),
  annotations: z.array(z.unknown()).optional().default([]),
  categories: z.array(z.unknown()),
});
const cocoImageSchema = z.object({
  id,
  file_name: z.string().min(1),
  width: z.number().positive().optional(),
  height: z.number().positive().optional(),
});
const cocoAnnotationSchema = z.object({
  image_id: id,
  category_id: id,
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]),
  iscrowd: z.union([z.number(), z.boolean()]).optional(),
});
const cocoCategorySchema = z.object({ id, name: z.string().min(1) });

/** True when parsed JSON looks like a COCO detection file (images, categories). */
export function looksLikeCoco(json: unknown): boolean {
  return cocoFileSchema.safeParse(json).success;
}

/**
 * Parses COCO detection JSON files (every `.json` with images, annotations, categories): category
 * ids, however sparse, become contiguous class ids in ascending id order; crowd boxes are reported
 * and left out; never throws.
 */
export async function parseCoco(files: DatasetFiles): Promise<ParsedDataset> {
  const issues: FormatIssue[] = [];
  const index = new ImagePathIndex(files.paths);
  const classNames: string[] = [];
  const classByName = new Map<string, number>();
  const images: SourceImage[] = [];
  const seen = new Set<string>();
  const jsonPaths = files.paths.filter((p) => p.toLowerCase().endsWith('.json')).sort();
  let cocoFiles = 0;
  for (const file of jsonPaths) {
    let json: unknown;
    try {
      json = JSON.parse(await files.readText(file));
    } catch (err) {
      issues.push({
        kind: 'bad_file',
        severity: 'error',
        file,
        message: `not valid JSON${jsonPosition(err)}`,
      });
      continue;
    }
    const top = cocoFileSchema.safeParse(json);
    if (!top.success) {
      issues.push({
        kind: 'bad_file',
        severity: 'warning',
        file,
        message: 'not a COCO file (needs images, annotations, categories arrays); skipped',
      });
      continue;
    }
    cocoFiles++;
    const fileSplit = splitFromFileName(file);
    const classOfCategory = new Map<string, number>();
    const categories = top.data.categories
      .map((raw, i) => ({ i, parsed: cocoCategorySchema.safeParse(raw) }))
      .filter(({ i, parsed }) => {
        if (!parsed.success)
          issues.push({
            kind: 'bad_file',
            severity: 'error',
            file,
            at: `categories[${i}]`,
            message: 'category needs id and name',
          });
        return parsed.success;
      })
      .map(({ parsed }) => parsed.data!)
      .sort((a, b) => compareIds(a.id, b.id));
    for (const cat of categories) {
      let cls = classByName.get(cat.name);
      if (cls === undefined) {
        cls = classNames.length;
        classNames.push(cat.name);
        classByName.set(cat.name, cls);
      }
      classOfCategory.set(String(cat.id), cls);
    }
    const byId = new Map<string, SourceImage>();
    top.data.images.forEach((raw, i) => {
      const parsed = cocoImageSchema.safeParse(raw);
      if (!parsed.success) {
        issues.push({
          kind: 'bad_file',
          severity: 'error',
          file,
          at: `images[${i}]`,
          message: 'image needs id and file_name',
        });
        return;
      }
      const img = parsed.data;
      const dir = path.dirname(file);
      const dirs = [
        dir,
        path.join(dir, 'images'),
        '',
        'images',
        ...(fileSplit ? [`images/${fileSplit}`, fileSplit, path.join(dir, '..', 'images', fileSplit)] : []),
        path.join(dir, '..', 'images'),
        path.join(dir, '..'),
      ];
      const resolved = index.resolve(img.file_name, dirs);
      if (resolved === undefined) {
        issues.push({
          kind: 'missing_image',
          severity: 'error',
          file,
          at: `images[${i}]`,
          message: `image file "${excerpt(img.file_name, 80)}" not found`,
        });
        return;
      }
      if (seen.has(resolved)) {
        issues.push({
          kind: 'duplicate_image',
          severity: 'error',
          file,
          at: `images[${i}]`,
          message: `"${excerpt(img.file_name, 80)}" is listed more than once`,
        });
        return;
      }
      seen.add(resolved);
      const split: Split | undefined = fileSplit ?? splitFromPath(resolved);
      const entry: SourceImage = {
        image: resolved,
        split,
        units: 'pixels',
        boxes: [],
        labelFile: file,
        declaredWidth: img.width,
        declaredHeight: img.height,
      };
      byId.set(String(img.id), entry);
      images.push(entry);
    });
    top.data.annotations.forEach((raw, i) => {
      const at = `annotations[${i}]`;
      const parsed = cocoAnnotationSchema.safeParse(raw);
      if (!parsed.success) {
        issues.push({
          kind: 'bad_file',
          severity: 'error',
          file,
          at,
          message: 'annotation needs image_id, category_id and bbox [x, y, w, h]',
        });
        return;
      }
      const ann = parsed.data;
      const image = byId.get(String(ann.image_id));
      if (image === undefined) {
        issues.push({
          kind: 'missing_image',
          severity: 'error',
          file,
          at,
          message: `annotation refers to image id ${ann.image_id}, which is not usable`,
        });
        return;
      }
      if (ann.iscrowd === 1 || ann.iscrowd === true) {
        issues.push({
          kind: 'crowd_ignored',
          severity: 'warning',
          file,
          at,
          message: `crowd annotation on "${image.image}" left out`,
        });
        return;
      }
      const cls = classOfCategory.get(String(ann.category_id));
      if (cls === undefined) {
        issues.push({
          kind: 'unknown_class',
          severity: 'error',
          file,
          at,
          message: `category_id ${ann.category_id} is not in categories`,
        });
        return;
      }
      const [x, y, w, h] = ann.bbox;
      const box: SourceBox = { classId: cls, x1: x, y1: y, x2: x + w, y2: y + h };
      image.boxes.push(box);
    });
  }
  if (cocoFiles === 0)
    issues.push({
      kind: 'bad_file',
      severity: 'error',
      file: '.',
      message: 'no COCO annotation file (.json with images, annotations, categories) found',
    });
  for (const p of files.paths.filter(isImagePath)) {
    if (!seen.has(p))
      issues.push({
        kind: 'missing_label',
        severity: 'error',
        file: p,
        message: 'no COCO file lists this image; not imported',
      });
  }
  return { format: 'coco', classNames, images, issues };
}

function compareIds(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/** An image to write into a COCO file. */
export interface CocoImageInput {
  fileName: string;
  width: number;
  height: number;
  boxes: readonly LabeledBox[];
}

/** Builds a COCO detection document: category ids 1..N in class order, absolute `[x, y, w, h]` boxes. */
export function buildCocoJson(
  classNames: readonly string[],
  images: readonly CocoImageInput[],
): Record<string, unknown> {
  const annotations: Array<Record<string, unknown>> = [];
  const cocoImages = images.map((img, i) => {
    for (const b of img.boxes) {
      const w = (b.x2 - b.x1) * img.width;
      const h = (b.y2 - b.y1) * img.height;
      annotations.push({
        id: annotations.length + 1,
        image_id: i + 1,
        category_id: b.classId + 1,
        bbox: [round(b.x1 * img.width), round(b.y1 * img.height), round(w), round(h)],
        area: round(w * h),
        iscrowd: 0,
      });
    }
    return { id: i + 1, file_name: img.fileName, width: img.width, height: img.height };
  });
  return {
    info: { description: 'exported by VisionInApp' },
    images: cocoImages,
    annotations,
    categories: classNames.map((name, i) => ({ id: i + 1, name, supercategory: 'object' })),
  };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Where JSON.parse stopped, without the excerpt of the file its message quotes. */
function jsonPosition(err: unknown): string {
  const m = /position (\d+)/.exec(String((err as Error).message));
  return m === null ? '' : ` (at character ${m[1]})`;
}
