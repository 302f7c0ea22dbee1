import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { runCommand } from './backends/process.js';

/** Test support: a tiny YOLO dataset of coloured squares (class 0 red, class 1 blue) on grey, seeded. */
export async function writeSquaresDataset(
  dir: string,
  opts: { counts: Record<'train' | 'val' | 'test', number>; size?: number; labels?: boolean; seed?: number },
): Promise<string> {
  const size = opts.size ?? 64;
  let s = opts.seed ?? 1;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const [split, n] of Object.entries(opts.counts)) {
    await mkdir(path.join(dir, 'images', split), { recursive: true });
    await mkdir(path.join(dir, 'labels', split), { recursive: true });
    for (let i = 0; i < n; i++) {
      const shapes: { c: number; x: number; y: number; w: number }[] = [];
      for (let k = 0; k < 1 + Math.floor(rand() * 2); k++) {
        const w = Math.round(size * (0.2 + rand() * 0.25));
        shapes.push({
          c: rand() < 0.5 ? 0 : 1,
          x: Math.round(rand() * (size - w)),
          y: Math.round(rand() * (size - w)),
          w,
        });
      }
      const svg = `<svg width="${size}" height="${size}" xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" fill="#808080"/>${shapes
        .map(
          (q) =>
            `<rect x="${q.x}" y="${q.y}" width="${q.w}" height="${q.w}" fill="${q.c === 0 ? '#e01010' : '#1030e0'}"/>`,
        )
        .join('')}</svg>`;
      await sharp(Buffer.from(svg))
        .jpeg({ quality: 90 })
        .toFile(path.join(dir, 'images', split, `${split}_${i}.jpg`));
      const lines = shapes.map(
        (q) => `${q.c} ${(q.x + q.w / 2) / size} ${(q.y + q.w / 2) / size} ${q.w / size} ${q.w / size}`,
      );
      await writeFile(
        path.join(dir, 'labels', split, `${split}_${i}.txt`),
        opts.labels === false ? '' : `${lines.join('\n')}\n`,
      );
    }
  }
  const yamlPath = path.join(dir, 'data.yaml');
  await writeFile(
    yamlPath,
    stringify({
      path: dir,
      train: 'images/train',
      val: 'images/val',
      test: 'images/test',
      nc: 2,
      names: ['red', 'blue'],
    }),
  );
  return yamlPath;
}

/** True when the builtin backend's Python has torch; prints why tests skip, and throws with REQUIRE_SERVICES=1. */
export async function skipWithoutTorch(
  python = process.env.TRAIN_PYTHON ?? '/usr/bin/python3',
): Promise<boolean> {
  const r = await runCommand(python, ['-c', 'import torch, onnx, PIL']);
  if (r.code === 0) return false;
  const reason = `${python} cannot import torch/onnx/PIL`;
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${reason}`);
  console.warn(`[skip] training tests skipped: ${reason}`);
  return true;
}
