import path from 'node:path/posix';
import { XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import { ImagePathIndex, isImagePath, splitFromPath, stem } from './paths.js';
import {
  SPLITS,
  type DatasetFiles,
  type FormatIssue,
  type ParsedDataset,
  type SourceImage,
  type Split,
} from './types.js';
import { excerpt } from './excerpt.js';

const num = z.coerce.number();
/** One Pascal VOC `<annotation>`; objects are validated one by one. */
const vocAnnotationSchema = z.object({
  filename: z.coerce.string().optional(),
  size: z.object({ width: num, height: num }).optional(),
  object: z.array(z.unknown()).optional().default([]),
});
const vocObjectSchema = z.object({
  name: z.coerce.string().min(1),
  difficult: z.coerce.number().optional(),
  bndbox: z.object({ xmin: num, ymin: num, xmax: num, ymax: num }),
});

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  isArray: (name) => name === 'object',
});

/** A VOC annotation before class ids are assigned. */
interface VocRecord {
  file: string;
  image: string;
  split?: Split;
  width?: number;
  height?: number;
  objects: Array<{
    name: string;
    difficult: boolean;
    x1: number;
    y1: number;
    x2: number;
    y2: number;
    at: string;
  }>;
}

/**
 * Parses Pascal VOC XML (one `<annotation>` per image, `ImageSets/Main/<split>.txt` honoured).
 * Classes are `classNames` when given (other names are reported), else every name found, sorted.
 * The `difficult` flag is kept; coordinates become 0-based pixel corners. Never throws.
 */
export async function parseVoc(
  files: DatasetFiles,
  opts: { classNames?: string[] } = {},
): Promise<ParsedDataset> {
  const issues: FormatIssue[] = [];
  const index = new ImagePathIndex(files.paths);
  const splitOfStem = await readImageSets(files, issues);
  const records: VocRecord[] = [];
  const used = new Set<string>();
  for (const file of files.paths.filter((p) => p.toLowerCase().endsWith('.xml')).sort()) {
    let doc: unknown;
    try {
      doc = parser.parse(await files.readText(file), true);
    } catch (err) {
      issues.push({
        kind: 'bad_file',
        severity: 'error',
        file,
        message: `not valid XML: ${excerpt((err as Error).message.split('\n')[0] ?? '', 80)}`,
      });
      continue;
    }
    const root = (doc as { annotation?: unknown }).annotation;
    const parsed = vocAnnotationSchema.safeParse(root);
    if (root === undefined || !parsed.success) {
      issues.push({
        kind: 'bad_file',
        severity: 'error',
        file,
        message: 'not a Pascal VOC annotation (<annotation> with <filename>, <size>, <object>)',
      });
      continue;
    }
    const ann = parsed.data;
    const dir = path.dirname(file);
    const image =
      (ann.filename !== undefined
        ? index.resolve(ann.filename, [
            path.join(dir, '..', 'JPEGImages'),
            dir,
            path.join(dir, '..', 'images'),
            'JPEGImages',
            'images',
            '',
          ])
        : undefined) ?? index.byStemName(stem(file));
    if (image === undefined) {
      issues.push({
        kind: 'missing_image',
        severity: 'error',
        file,
        message: `image file "${excerpt(ann.filename ?? stem(file), 80)}" not found`,
      });
      continue;
    }
    if (used.has(image)) {
      issues.push({
        kind: 'duplicate_image',
        severity: 'error',
        file,
        message: `"${image}" is annotated by more than one XML file`,
      });
      continue;
    }
    used.add(image);
    const record: VocRecord = {
      file,
      image,
      split: splitOfStem.get(stem(image)) ?? splitFromPath(image),
      width: ann.size?.width,
      height: ann.size?.height,
      objects: [],
    };
    ann.object.forEach((raw, i) => {
      const obj = vocObjectSchema.safeParse(raw);
      if (
        !obj.success ||
        [obj.data.bndbox.xmin, obj.data.bndbox.ymin, obj.data.bndbox.xmax, obj.data.bndbox.ymax].some(
          (n) => !Number.isFinite(n),
        )
      ) {
        issues.push({
          kind: 'bad_file',
          severity: 'error',
          file,
          at: `object[${i}]`,
          message: 'object needs <name> and numeric <bndbox> xmin, ymin, xmax, ymax',
        });
        return;
      }
      const { name, difficult, bndbox } = obj.data;
      record.objects.push({
        name: name.trim(),
        difficult: difficult === 1,
        x1: bndbox.xmin - 1,
        y1: bndbox.ymin - 1,
        x2: bndbox.xmax,
        y2: bndbox.ymax,
        at: `object[${i}]`,
      });
    });
    records.push(record);
  }
  const classNames =
    opts.classNames ?? [...new Set(records.flatMap((r) => r.objects.map((o) => o.name)))].sort();
  const classOf = new Map(classNames.map((n, i) => [n, i]));
  const images: SourceImage[] = records.map((r) => ({
    image: r.image,
    split: r.split,
    units: 'pixels',
    declaredWidth: r.width,
    declaredHeight: r.height,
    labelFile: r.file,
    boxes: r.objects.flatMap((o) => {
      const cls = classOf.get(o.name);
      if (cls === undefined) {
        issues.push({
          kind: 'unknown_class',
          severity: 'error',
          file: r.file,
          at: o.at,
          message: `class "${excerpt(o.name, 40)}" is not one of: ${classNames.join(', ')}`,
        });
        return [];
      }
      return [
        { classId: cls, x1: o.x1, y1: o.y1, x2: o.x2, y2: o.y2, ...(o.difficult ? { difficult: true } : {}) },
      ];
    }),
  }));
  for (const p of files.paths.filter(isImagePath)) {
    if (!used.has(p))
      issues.push({
        kind: 'missing_label',
        severity: 'error',
        file: p,
        message: 'no VOC XML annotates this image; not imported',
      });
  }
  return { format: 'voc', classNames, images, issues };
}

async function readImageSets(files: DatasetFiles, issues: FormatIssue[]): Promise<Map<string, Split>> {
  const out = new Map<string, Split>();
  for (const split of SPLITS) {
    const file = files.paths.find((p) => p.endsWith(`ImageSets/Main/${split}.txt`));
    if (file === undefined) continue;
    try {
      for (const line of (await files.readText(file)).split(/\r?\n/)) {
        const s = line.trim().split(/\s+/)[0];
        if (s) out.set(s, split);
      }
    } catch (err) {
      issues.push({
        kind: 'bad_file',
        severity: 'error',
        file,
        message: `cannot read: ${(err as Error).message}`,
      });
    }
  }
  return out;
}
