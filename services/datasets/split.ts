import type { Split } from '../../vision/formats/index.js';

/** Train/val/test shares; they need not sum to one (they are normalised). */
export interface SplitRatios {
  train: number;
  val: number;
  test: number;
}

/** The default 80/10/10 split. */
export const DEFAULT_SPLIT: SplitRatios = { train: 0.8, val: 0.1, test: 0.1 };

/** The split an image falls in, from its content hash alone: the same bytes and ratios always give the same split. */
export function splitForHash(sha256: string, ratios: SplitRatios): Split {
  const total = ratios.train + ratios.val + ratios.test;
  const u = parseInt(sha256.slice(0, 12), 16) / 2 ** 48;
  if (u < ratios.train / total) return 'train';
  if (u < (ratios.train + ratios.val) / total) return 'val';
  return 'test';
}
