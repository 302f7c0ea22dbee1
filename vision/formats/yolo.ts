import path from 'node:path/posix';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { isImagePath, splitFromPath, stem } from './paths.js';
import type { LabeledBox } from './boxes.js';
import {
  SPLITS,
  type DatasetFiles,
  type FormatIssue,
  type ParsedDataset,
  type SourceBox,
  type SourceImage,
  type Split,
} from './types.js';
import { excerpt } from './excerpt.js';

const pathOrList = z.union([z.string(), z.array(z.string())]);
/** Most classes a dataset may declare or use; a bigger index is a typo or hostile input, not a class list to allocate. */
const MAX_CLASSES = 10_000;
const className = z.union([z.string(), z.number()]).transform(String);

/** The parts of an Ultralytics `data.yaml` the importer uses. */
const dataYamlSchema = z.object({
  path: z.string().optional(),
  train: pathOrList.optional(),
  val: pathOrList.optional(),
  test: pathOrList.optional().nullable(),
  nc: z.number().int().nonnegative().optional(),
  names: z.union([z.array(className), z.record(z.string(), className)]).optional(),
});

/** What a `data.yaml` says: class names, class count, and the folder of each split. */
export interface YoloDataYaml {
  classNames?: string[];
  nc?: number;
  splitDirs: Partial<Record<Split, string[]>>;
  issues: FormatIssue[];
}

/** Parses an Ultralytics `data.yaml` (names as a list or an `{index: name}` map); never throws. */
export function parseYoloDataYaml(text: string, file: string): YoloDataYaml {
  const issues: FormatIssue[] = [];
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    issues.push({
      kind: 'bad_file',
      severity: 'error',
      file,
      message: `not valid YAML: ${(err as Error).message.split('\n')[0]}`,
    });
    return { splitDirs: {}, issues };
  }
  const parsed = dataYamlSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    issues.push({
      kind: 'bad_file',
      severity: 'error',
      file,
      message: `unexpected data.yaml content: ${detail}`,
    });
    return { splitDirs: {}, issues };
  }
  const data = parsed.data;
  let classNames: string[] | undefined;
  if (Array.isArray(data.names)) classNames = data.names;
  else if (data.names !== undefined) {
    const entries = Object.entries(data.names);
    const indices = entries.map(([k]) => Number(k));
    if (indices.some((i) => !Number.isInteger(i) || i < 0 || i >= MAX_CLASSES)) {
      issues.push({
        kind: 'bad_file',
        severity: 'error',
        file,
        message: `names map keys must be class indices 0, 1, 2, ... below ${MAX_CLASSES}`,
      });
    } else {
      const size = Math.max(-1, ...indices) + 1;
      classNames = Array.from({ length: size }, (_, i) =>
        data.names && !Array.isArray(data.names) ? (data.names[String(i)] ?? `class${i}`) : `class${i}`,
      );
      if (entries.length !== size) {
        issues.push({
          kind: 'class_mismatch',
          severity: 'warning',
          file,
          message: `names map has gaps; missing indices were named class<N>`,
        });
      }
    }
  }
  if (classNames !== undefined && data.nc !== undefined && data.nc !== classNames.length) {
    issues.push({
      kind: 'class_mismatch',
      severity: 'warning',
      file,
      message: `nc is ${data.nc} but ${classNames.length} names are listed; using the names`,
    });
  }
  if (data.nc !== undefined && data.nc > MAX_CLASSES) {
    issues.push({
      kind: 'bad_file',
      severity: 'error',
      file,
      message: `nc is ${data.nc}, more than the ${MAX_CLASSES} classes a dataset may have`,
    });
    return { splitDirs: {}, issues };
  }
  if (classNames === undefined && data.nc !== undefined)
    classNames = Array.from({ length: data.nc }, (_, i) => `class${i}`);
  const splitDirs: Partial<Record<Split, string[]>> = {};
  for (const split of SPLITS) {
    const value = data[split];
    if (value === undefined || value === null) continue;
    const dirs = (Array.isArray(value) ? value : [value])
      .filter((v) => !v.endsWith('.txt'))
      .map(cleanDir)
      .filter((d) => d !== '');
    if (dirs.length > 0) splitDirs[split] = dirs;
  }
  return { classNames, nc: data.nc, splitDirs, issues };
}

/** Parses one YOLO label file (`cls cx cy w h` per line, normalised) into corner boxes; never throws. */
export function parseYoloLabels(
  text: string,
  file: string,
  classCount: number | undefined,
): { boxes: SourceBox[]; issues: FormatIssue[] } {
  const boxes: SourceBox[] = [];
  const issues: FormatIssue[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    const nums = parts.map(Number);
    // a segmentation line (class x1 y1 x2 y2 x3 y3 …) becomes its bounding box, as Ultralytics does
    const isPolygon = parts.length >= 7 && parts.length % 2 === 1;
    if ((parts.length !== 5 && !isPolygon) || nums.some((n) => !Number.isFinite(n))) {
      // a line that does not even start with a class id is not a label line (e.g. a copied /etc/passwd): never echoed
      const got = Number.isFinite(nums[0])
        ? `"${excerpt(line)}"`
        : `a line of ${line.length} characters that does not start with a class id`;
      issues.push({
        kind: 'malformed_line',
        severity: 'error',
        file,
        line: i + 1,
        message: `expected "class cx cy w h" (5 numbers) or a polygon "class x1 y1 x2 y2 x3 y3 …", got ${got}`,
      });
      return;
    }
    const cls = nums[0]!;
    if (isPolygon) {
      // a loop, not Math.min(...xs): spreading a huge polygon overflows the call stack
      let [minX, maxX, minY, maxY] = [Infinity, -Infinity, Infinity, -Infinity];
      for (let k = 1; k < nums.length; k += 2) {
        minX = Math.min(minX, nums[k]!);
        maxX = Math.max(maxX, nums[k]!);
        minY = Math.min(minY, nums[k + 1]!);
        maxY = Math.max(maxY, nums[k + 1]!);
      }
      nums.splice(1, 4, (minX + maxX) / 2, (minY + maxY) / 2, maxX - minX, maxY - minY);
    }
    const [, cx, cy, w, h] = nums as [number, number, number, number, number];
    if (!Number.isInteger(cls) || cls < 0) {
      issues.push({
        kind: 'malformed_line',
        severity: 'error',
        file,
        line: i + 1,
        message: `class id must be a non-negative integer, got "${excerpt(parts[0]!)}"`,
      });
      return;
    }
    if (classCount !== undefined && cls >= classCount) {
      issues.push({
        kind: 'unknown_class',
        severity: 'error',
        file,
        line: i + 1,
        message: `class id ${cls} is not among the ${classCount} classes (0..${classCount - 1})`,
      });
      return;
    }
    if (cls >= MAX_CLASSES) {
      issues.push({
        kind: 'unknown_class',
        severity: 'error',
        file,
        line: i + 1,
        message: `class id ${cls} is over the limit of ${MAX_CLASSES} classes; add a data.yaml listing the classes`,
      });
      return;
    }
    boxes.push({ classId: cls, x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2 });
  });
  return { boxes, issues };
}

/** The label file YOLO expects for an image: the last `images` folder becomes `labels`, the extension `.txt`. */
export function yoloLabelPathFor(image: string): string {
  const dirs = path.dirname(image).split('/');
  const at = dirs.lastIndexOf('images');
  if (at >= 0) dirs[at] = 'labels';
  const dir = dirs.join('/');
  return path.join(dir === '.' ? '' : dir, `${stem(image)}.txt`);
}

/** Parses a YOLO dataset (data.yaml + images/ + labels/, with or without split folders); never throws. */
export async function parseYolo(files: DatasetFiles): Promise<ParsedDataset> {
  const issues: FormatIssue[] = [];
  const yamlPath = findDataYaml(files.paths);
  let meta: YoloDataYaml = { splitDirs: {}, issues: [] };
  if (yamlPath !== undefined) {
    const text = await readOrReport(files, yamlPath, issues);
    if (text !== undefined) meta = parseYoloDataYaml(text, yamlPath);
    issues.push(...meta.issues);
  } else {
    issues.push({
      kind: 'bad_file',
      severity: 'warning',
      file: 'data.yaml',
      message: 'no data.yaml found; classes are named class0, class1, ...',
    });
  }
  const yamlDir = yamlPath === undefined ? '' : path.dirname(yamlPath);
  const splitOf = splitResolver(meta.splitDirs, yamlDir);
  const classCount = meta.classNames?.length;
  const labelSet = new Set(files.paths.filter((p) => p.endsWith('.txt')));
  const images: SourceImage[] = [];
  const imagePaths = files.paths.filter(isImagePath).sort();
  const BATCH = 64;
  for (let start = 0; start < imagePaths.length; start += BATCH) {
    const batch = imagePaths.slice(start, start + BATCH);
    const parsed = await Promise.all(
      batch.map(async (image): Promise<SourceImage> => {
        const labelFile = yoloLabelPathFor(image);
        const split = splitOf(image);
        if (!labelSet.has(labelFile)) {
          issues.push({
            kind: 'missing_label',
            severity: 'warning',
            file: image,
            message: `no label file ${labelFile}; imported as a background image`,
          });
          return { image, split, units: 'normalized', boxes: [] };
        }
        const text = await readOrReport(files, labelFile, issues);
        if (text === undefined) return { image, split, units: 'normalized', boxes: [], labelFile };
        if (text.trim() === '') {
          issues.push({
            kind: 'empty_label',
            severity: 'warning',
            file: labelFile,
            message: 'empty label file; imported as a background image',
          });
        }
        const labels = parseYoloLabels(text, labelFile, classCount);
        issues.push(...labels.issues);
        return { image, split, units: 'normalized', boxes: labels.boxes, labelFile };
      }),
    );
    images.push(...parsed);
  }
  let classNames = meta.classNames;
  if (classNames === undefined) {
    let maxId = -1;
    for (const img of images) for (const b of img.boxes) maxId = Math.max(maxId, b.classId);
    classNames = Array.from({ length: maxId + 1 }, (_, i) => `class${i}`);
  }
  return { format: 'yolo', classNames, images, issues };
}

function findDataYaml(paths: readonly string[]): string | undefined {
  const yamls = paths
    .filter((p) => /\.ya?ml$/i.test(p))
    .sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
  return yamls.find((p) => /^(data|dataset)\.ya?ml$/i.test(path.basename(p))) ?? yamls[0];
}

function splitResolver(
  splitDirs: Partial<Record<Split, string[]>>,
  yamlDir: string,
): (image: string) => Split | undefined {
  const entries = SPLITS.flatMap((s) => (splitDirs[s] ?? []).map((d) => ({ split: s, dir: d })));
  const distinct = new Set(entries.map((e) => e.dir)).size === entries.length && entries.length > 1;
  return (image) => {
    if (distinct) {
      const dir = path.dirname(image);
      const rel = yamlDir === '.' || yamlDir === '' ? dir : path.relative(yamlDir, dir);
      const hit = entries.find((e) => rel === e.dir || rel.endsWith(`/${e.dir}`) || dir === e.dir);
      if (hit !== undefined) return hit.split;
    }
    return splitFromPath(image);
  };
}

function cleanDir(dir: string): string {
  let d = path.normalize(dir.replace(/\\/g, '/'));
  while (d.startsWith('../') || d.startsWith('./')) d = d.slice(d.indexOf('/') + 1);
  if (d === '.' || d === '..') return '';
  return d.replace(/\/+$/, '');
}

function depth(p: string): number {
  return p.split('/').length;
}

async function readOrReport(
  files: DatasetFiles,
  file: string,
  issues: FormatIssue[],
): Promise<string | undefined> {
  try {
    return await files.readText(file);
  } catch (err) {
    issues.push({
      kind: 'bad_file',
      severity: 'error',
      file,
      message: `cannot read: ${(err as Error).message}`,
    });
    return undefined;
  }
}

/** Writes boxes as a YOLO label file: `cls cx cy w h` per line, normalised, 6 decimals. */
export function formatYoloLabels(boxes: readonly LabeledBox[]): string {
  return boxes
    .map(
      (b) =>
        [b.classId, (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2, b.x2 - b.x1, b.y2 - b.y1]
          .map((v, i) => (i === 0 ? String(v) : v.toFixed(6)))
          .join(' ') + '\n',
    )
    .join('');
}

/** Writes an Ultralytics `data.yaml` for the `images/<split>` layout. */
export function formatYoloDataYaml(classNames: readonly string[], splits: readonly Split[]): string {
  const doc: Record<string, unknown> = { path: '.' };
  for (const s of splits) doc[s] = `images/${s}`;
  doc.nc = classNames.length;
  doc.names = [...classNames];
  return stringifyYaml(doc);
}
