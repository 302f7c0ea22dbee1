import path from 'node:path/posix';
import type { DatasetFormat } from './types.js';

/** Guesses a dataset's format from its file names: a YOLO yaml or `labels/*.txt`, else COCO `.json`, else VOC `.xml`. */
export function detectFormat(paths: readonly string[]): DatasetFormat | undefined {
  const lower = paths.map((p) => p.toLowerCase());
  if (lower.some((p) => /\.ya?ml$/.test(p))) return 'yolo';
  if (lower.some((p) => p.endsWith('.json'))) return 'coco';
  if (lower.some((p) => p.endsWith('.xml'))) return 'voc';
  if (lower.some((p) => p.endsWith('.txt') && path.dirname(p).split('/').includes('labels'))) return 'yolo';
  return undefined;
}
