import type { DatasetFormat, FormatIssue, IssueKind, LabeledBox, Split } from '../../vision/formats/index.js';

/** Issues of one kind: how many, and a few examples with file and line. */
export interface IssueGroup {
  kind: IssueKind;
  errors: number;
  warnings: number;
  examples: FormatIssue[];
}

/** The validation report of a version: what was found, what was imported, and what was left out and why. */
export interface ValidationReport {
  format: DatasetFormat | 'samples' | 'resplit';
  origin: string;
  counts: {
    files: number;
    imagesFound: number;
    imagesImported: number;
    imagesSkipped: number;
    duplicates: number;
    boxesImported: number;
    boxesSkipped: number;
    backgroundImages: number;
    errors: number;
    warnings: number;
  };
  issues: IssueGroup[];
}

/** Statistics of a version: classes, splits and image sizes. */
export interface DatasetVersionStats {
  images: number;
  boxes: number;
  /** Images with no boxes. */
  backgroundImages: number;
  classes: Array<{ id: number; name: string; boxes: number; images: number }>;
  splits: Record<Split, { images: number; boxes: number }>;
  /** `source` when the source's split folders were kept, `hash` when split by content hash. */
  splitMode: 'source' | 'hash';
  imageSizes: {
    /** Images by their longer side. */
    buckets: Array<{ label: string; images: number }>;
    minWidth: number;
    maxWidth: number;
    minHeight: number;
    maxHeight: number;
    meanWidth: number;
    meanHeight: number;
  };
}

const EXAMPLES = 5;
const BOX_KINDS: ReadonlySet<IssueKind> = new Set([
  'malformed_line',
  'unknown_class',
  'box_out_of_range',
  'degenerate_box',
  'crowd_ignored',
]);

/** Groups issues by kind with counts and the first few examples. */
export function groupIssues(issues: readonly FormatIssue[]): IssueGroup[] {
  const groups = new Map<IssueKind, IssueGroup>();
  const ordered = [...issues].sort(
    (a, b) =>
      a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.at ?? '').localeCompare(b.at ?? ''),
  );
  for (const issue of ordered) {
    let g = groups.get(issue.kind);
    if (g === undefined)
      groups.set(issue.kind, (g = { kind: issue.kind, errors: 0, warnings: 0, examples: [] }));
    if (issue.severity === 'error') g.errors++;
    else g.warnings++;
    if (g.examples.length < EXAMPLES) g.examples.push(boundedIssue(issue));
  }
  return [...groups.values()].sort(
    (a, b) => b.errors - a.errors || b.warnings - a.warnings || a.kind.localeCompare(b.kind),
  );
}

const MAX_MESSAGE = 300;
const MAX_FILE = 200;

/**
 * An example as it may be stored and shown: control characters escaped and lengths capped, so a
 * report (returned to the caller and kept in the audit log) never carries more than the short,
 * escaped excerpts the parsers put in their messages.
 */
function boundedIssue(issue: FormatIssue): FormatIssue {
  const bound = (s: string, max: number) => {
    const safe = s.replace(
      // eslint-disable-next-line no-control-regex
      /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    return safe.length > max ? `${safe.slice(0, max - 1)}…` : safe;
  };
  return {
    ...issue,
    file: bound(issue.file, MAX_FILE),
    message: bound(issue.message, MAX_MESSAGE),
    ...(issue.at === undefined ? {} : { at: bound(issue.at, 100) }),
  };
}

/** Builds a report from the issues and the images kept. */
export function buildReport(input: {
  format: ValidationReport['format'];
  origin: string;
  files: number;
  imagesFound: number;
  kept: ReadonlyArray<{ boxes: readonly LabeledBox[] }>;
  issues: readonly FormatIssue[];
}): ValidationReport {
  const errors = input.issues.filter((i) => i.severity === 'error');
  return {
    format: input.format,
    origin: input.origin,
    counts: {
      files: input.files,
      imagesFound: input.imagesFound,
      imagesImported: input.kept.length,
      imagesSkipped: Math.max(0, input.imagesFound - input.kept.length),
      duplicates: input.issues.filter((i) => i.kind === 'duplicate_image').length,
      boxesImported: input.kept.reduce((n, i) => n + i.boxes.length, 0),
      boxesSkipped: errors.filter((i) => BOX_KINDS.has(i.kind)).length,
      backgroundImages: input.kept.filter((i) => i.boxes.length === 0).length,
      errors: errors.length,
      warnings: input.issues.length - errors.length,
    },
    issues: groupIssues(input.issues),
  };
}

const SIZE_BUCKETS: Array<[string, number]> = [
  ['<=320', 320],
  ['321-640', 640],
  ['641-1024', 1024],
  ['1025-2048', 2048],
  ['>2048', Infinity],
];

/** Computes the statistics of a set of images. */
export function computeStats(
  classNames: readonly string[],
  images: ReadonlyArray<{ width: number; height: number; split: Split; boxes: readonly LabeledBox[] }>,
  splitMode: DatasetVersionStats['splitMode'],
): DatasetVersionStats {
  const classes = classNames.map((name, id) => ({ id, name, boxes: 0, images: 0 }));
  const splits: DatasetVersionStats['splits'] = {
    train: { images: 0, boxes: 0 },
    val: { images: 0, boxes: 0 },
    test: { images: 0, boxes: 0 },
  };
  const buckets = SIZE_BUCKETS.map(([label]) => ({ label, images: 0 }));
  let boxes = 0;
  for (const img of images) {
    boxes += img.boxes.length;
    splits[img.split].images++;
    splits[img.split].boxes += img.boxes.length;
    const seen = new Set<number>();
    for (const b of img.boxes) {
      const c = classes[b.classId];
      if (c === undefined) continue;
      c.boxes++;
      if (!seen.has(b.classId)) c.images++;
      seen.add(b.classId);
    }
    const side = Math.max(img.width, img.height);
    buckets[SIZE_BUCKETS.findIndex(([, max]) => side <= max)]!.images++;
  }
  const widths = images.map((i) => i.width);
  const heights = images.map((i) => i.height);
  const mean = (xs: number[]) =>
    xs.length === 0 ? 0 : Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    images: images.length,
    boxes,
    backgroundImages: images.filter((i) => i.boxes.length === 0).length,
    classes,
    splits,
    splitMode,
    imageSizes: {
      buckets,
      minWidth: widths.length ? Math.min(...widths) : 0,
      maxWidth: widths.length ? Math.max(...widths) : 0,
      minHeight: heights.length ? Math.min(...heights) : 0,
      maxHeight: heights.length ? Math.max(...heights) : 0,
      meanWidth: mean(widths),
      meanHeight: mean(heights),
    },
  };
}

/** The report as a few lines a person reads at the end of an import (the CLI prints this). */
export function formatReport(report: ValidationReport): string {
  const c = report.counts;
  const lines = [
    `${report.format} from ${report.origin}: ${c.imagesImported} of ${c.imagesFound} images imported, ${c.boxesImported} boxes, ${c.backgroundImages} background images`,
    `${c.errors} errors, ${c.warnings} warnings, ${c.duplicates} duplicates, ${c.boxesSkipped} boxes left out`,
  ];
  for (const g of report.issues) {
    lines.push(`  ${g.kind}: ${g.errors} errors, ${g.warnings} warnings`);
    for (const e of g.examples)
      lines.push(
        `    ${e.file}${e.line !== undefined ? `:${e.line}` : ''}${e.at !== undefined ? ` (${e.at})` : ''}: ${e.message}`,
      );
  }
  return lines.join('\n');
}
