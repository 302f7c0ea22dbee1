import path from 'node:path/posix';
import type { Split } from './types.js';

/** File extensions accepted as images. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff'] as const;

/** True when the path names an image file by its extension. */
export function isImagePath(p: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(p).toLowerCase());
}

const SPLIT_WORDS: Record<string, Split> = {
  train: 'train',
  training: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  test: 'test',
  testing: 'test',
};

/** The split a folder name on the path implies (`images/train/x.jpg`, `valid/images/x.jpg`), if any. */
export function splitFromPath(p: string): Split | undefined {
  const dirs = path.dirname(p).split('/');
  for (let i = dirs.length - 1; i >= 0; i--) {
    const hit = SPLIT_WORDS[dirs[i]!.toLowerCase()];
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** The split a file name implies (`instances_train2017.json`, `val.txt`), if any. */
export function splitFromFileName(p: string): Split | undefined {
  const base = path.basename(p).toLowerCase();
  if (/(^|[^a-z])(train|training)([^a-z]|$)/.test(base)) return 'train';
  if (/(^|[^a-z])(val|valid|validation)([^a-z]|$)/.test(base)) return 'val';
  if (/(^|[^a-z])(test|testing)([^a-z]|$)/.test(base)) return 'test';
  return undefined;
}

/** Finds image paths by a name an annotation file gives: exact candidates first, then a unique base name. */
export class ImagePathIndex {
  private readonly all: Set<string>;
  private readonly byBase = new Map<string, string[]>();
  private readonly byStem = new Map<string, string[]>();

  constructor(paths: readonly string[]) {
    const images = paths.filter(isImagePath);
    this.all = new Set(images);
    for (const p of images) {
      push(this.byBase, path.basename(p), p);
      push(this.byStem, stem(p), p);
    }
  }

  /** Resolves `name` trying each candidate directory, then the base name when it is unique. */
  resolve(name: string, dirs: readonly string[]): string | undefined {
    const clean = name.replace(/\\/g, '/');
    for (const dir of dirs) {
      const candidate = path.normalize(path.join(dir, clean));
      if (this.all.has(candidate)) return candidate;
    }
    const byBase = this.byBase.get(path.basename(clean));
    return byBase?.length === 1 ? byBase[0] : undefined;
  }

  /** The image whose file name without extension is `s`, when exactly one has it. */
  byStemName(s: string): string | undefined {
    const hits = this.byStem.get(s);
    return hits?.length === 1 ? hits[0] : undefined;
  }
}

/** File name without directory and extension. */
export function stem(p: string): string {
  return path.basename(p, path.extname(p));
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
