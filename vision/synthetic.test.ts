import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../core/errors.js';
import { mulberry32, renderScene, SYNTHETIC_CLASSES, toYoloLabels } from './synthetic.js';
import { generateYoloDataset, type GenerateProgress } from './synthetic-dataset.js';

describe('mulberry32', () => {
  it('is deterministic per seed and uniform-ish', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, v) => s + v, 0) / xs.length).toBeCloseTo(0.5, 1);
  });
});

describe('renderScene', () => {
  it('renders the same pixels and labels for the same seed, different ones for another', () => {
    const a = renderScene(7);
    const b = renderScene(7);
    const c = renderScene(8);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(a.objects).toEqual(b.objects);
    expect(Buffer.from(a.data).equals(Buffer.from(c.data))).toBe(false);
    expect(a.data.length).toBe(320 * 320 * 3);
  });

  it('produces all three classes with boxes inside the image and objects of 16-96 px', () => {
    const counts = [0, 0, 0];
    const sizes: number[] = [];
    let images = 0;
    for (let seed = 0; seed < 80; seed++) {
      const s = renderScene(seed);
      images++;
      for (const o of s.objects) {
        counts[o.classId]!++;
        const [x1, y1, x2, y2] = o.box;
        expect(x1).toBeGreaterThanOrEqual(0);
        expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(320);
        expect(y2).toBeLessThanOrEqual(320);
        expect(x2).toBeGreaterThan(x1);
        sizes.push(Math.max(x2 - x1, y2 - y1));
      }
    }
    expect(SYNTHETIC_CLASSES).toEqual(['helmet', 'head', 'vest']);
    for (const n of counts) expect(n).toBeGreaterThan(30);
    // Several workers per image on average, and a spread of object scales.
    expect((counts[0]! + counts[1]!) / images).toBeGreaterThan(2);
    sizes.sort((a, b) => a - b);
    expect(sizes[Math.floor(sizes.length * 0.05)]!).toBeLessThan(24);
    expect(sizes[Math.floor(sizes.length * 0.95)]!).toBeGreaterThan(70);
    expect(sizes[sizes.length - 1]!).toBeLessThan(130);
  });

  it('formats its objects as normalised YOLO label lines', () => {
    const s = renderScene(3);
    expect(s.objects.length).toBeGreaterThan(0);
    const labels = toYoloLabels(s.objects, s.width, s.height).split('\n');
    expect(labels).toHaveLength(s.objects.length);
    for (const line of labels) expect(line).toMatch(/^[012] 0\.\d{6} 0\.\d{6} [01]\.\d{6} [01]\.\d{6}$/);
  });

  it('supports non-square frames', () => {
    const s = renderScene(1, { width: 1280, height: 720 });
    expect(s.data.length).toBe(1280 * 720 * 3);
    for (const o of s.objects) expect(o.box[3]).toBeLessThanOrEqual(720);
  });
});

describe('generateYoloDataset', () => {
  it('writes data.yaml, images and labels per split with progress, deterministically', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'synth-'));
    try {
      const progress: GenerateProgress[] = [];
      const out = await generateYoloDataset({
        outDir: dir,
        seed: 5,
        counts: { train: 6, val: 2, test: 2 },
        size: 160,
        onProgress: (p) => progress.push(p),
      });
      expect(out.images).toEqual({ train: 6, val: 2, test: 2 });
      expect(progress).toHaveLength(10);
      expect(progress.at(-1)).toMatchObject({ done: 10, total: 10 });
      const yaml = parse(await readFile(out.dataYaml, 'utf8')) as Record<string, unknown>;
      expect(yaml).toMatchObject({
        train: 'images/train',
        val: 'images/val',
        test: 'images/test',
        nc: 3,
        names: ['helmet', 'head', 'vest'],
      });
      const imgs = (await readdir(path.join(dir, 'images', 'train'))).sort();
      const labels = (await readdir(path.join(dir, 'labels', 'train'))).sort();
      expect(imgs).toHaveLength(6);
      expect(labels).toEqual(imgs.map((f) => f.replace(/\.jpg$/, '.txt')));
      const jpg = await readFile(path.join(dir, 'images', 'train', imgs[0]!));
      expect([...jpg.subarray(0, 2)]).toEqual([0xff, 0xd8]);
      const total = out.objects.train + out.objects.val + out.objects.test;
      expect(total).toBeGreaterThan(10);

      const again = await mkdtemp(path.join(os.tmpdir(), 'synth-'));
      await generateYoloDataset({ outDir: again, seed: 5, counts: { train: 6, val: 0, test: 0 }, size: 160 });
      const a = await readFile(path.join(dir, 'labels', 'train', labels[3]!), 'utf8');
      const b = await readFile(path.join(again, 'labels', 'train', labels[3]!), 'utf8');
      expect(b).toBe(a);
      await rm(again, { recursive: true, force: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects invalid options with a readable message', async () => {
    const err = await generateYoloDataset({
      outDir: '',
      seed: 1.5,
      counts: { train: -1, val: 0, test: 0 },
    }).catch((e: unknown) => e);
    expect(isPlatformError(err, 'invalid_input')).toBe(true);
    expect((err as Error).message).toMatch(/counts\.train/);
  });
});
