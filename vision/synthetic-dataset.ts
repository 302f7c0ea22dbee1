import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { z } from 'zod';
import { describeZodError, PlatformError } from '../core/errors.js';
import { deriveSeed, renderScene, SYNTHETIC_CLASSES, toYoloLabels } from './synthetic.js';

/** The three YOLO splits. */
export type Split = 'train' | 'val' | 'test';

/** Progress of dataset generation: images written so far out of the total. */
export interface GenerateProgress {
  done: number;
  total: number;
  split: Split;
}

/** Options of `generateYoloDataset`, validated with zod. */
export const generateYoloDatasetSchema = z.object({
  outDir: z.string().min(1).describe('Folder to write data.yaml, images/ and labels/ into'),
  seed: z.number().int().describe('Seed; the same seed always gives the same dataset'),
  counts: z
    .object({
      train: z.number().int().min(0),
      val: z.number().int().min(0),
      test: z.number().int().min(0),
    })
    .describe('Images per split'),
  size: z.number().int().min(64).max(2048).default(320).describe('Square image size in pixels'),
  quality: z.number().int().min(50).max(100).default(90).describe('JPEG quality'),
  concurrency: z.number().int().min(1).max(64).default(4).describe('Images encoded at once'),
});

/** Input of `generateYoloDataset`. */
export type GenerateYoloDatasetOptions = z.input<typeof generateYoloDatasetSchema> & {
  onProgress?: (p: GenerateProgress) => void;
};

/** What `generateYoloDataset` wrote. */
export interface GeneratedDataset {
  outDir: string;
  dataYaml: string;
  names: string[];
  images: Record<Split, number>;
  objects: Record<Split, number>;
}

const SPLITS: Split[] = ['train', 'val', 'test'];

/** Writes a seeded synthetic helmet dataset in YOLO format (data.yaml, images/<split>/*.jpg, labels/<split>/*.txt). */
export async function generateYoloDataset(options: GenerateYoloDatasetOptions): Promise<GeneratedDataset> {
  const parsed = generateYoloDatasetSchema.safeParse(options);
  if (!parsed.success)
    throw new PlatformError(
      'invalid_input',
      `invalid dataset generation options: ${describeZodError(parsed.error)}`,
    );
  const { outDir, seed, counts, size, quality, concurrency } = parsed.data;
  const root = path.resolve(outDir);
  const total = counts.train + counts.val + counts.test;
  const objects: Record<Split, number> = { train: 0, val: 0, test: 0 };
  let done = 0;
  for (const [si, split] of SPLITS.entries()) {
    await mkdir(path.join(root, 'images', split), { recursive: true });
    await mkdir(path.join(root, 'labels', split), { recursive: true });
    const n = counts[split];
    const width = String(Math.max(4, String(n).length));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        const scene = renderScene(deriveSeed(seed, si, i), { width: size, height: size });
        const name = `${split}_${String(i).padStart(Number(width), '0')}`;
        const jpg = await sharp(scene.data, {
          raw: { width: scene.width, height: scene.height, channels: 3 },
        })
          .jpeg({ quality })
          .toBuffer();
        await writeFile(path.join(root, 'images', split, `${name}.jpg`), jpg);
        const labels = toYoloLabels(scene.objects, scene.width, scene.height);
        await writeFile(
          path.join(root, 'labels', split, `${name}.txt`),
          labels.length > 0 ? `${labels}\n` : '',
        );
        objects[split] += scene.objects.length;
        done++;
        options.onProgress?.({ done, total, split });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, n)) }, worker));
  }
  const names = [...SYNTHETIC_CLASSES];
  const dataYaml = path.join(root, 'data.yaml');
  await writeFile(
    dataYaml,
    stringify({
      path: root,
      train: 'images/train',
      val: 'images/val',
      test: 'images/test',
      nc: names.length,
      names,
    }),
  );
  return { outDir: root, dataYaml, names, images: { ...counts }, objects };
}
