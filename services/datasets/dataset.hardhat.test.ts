import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageSchemas } from '../../protocol/envelope.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { DatasetService, type VersionResult } from './dataset.service.js';
import { formatReport } from './report.js';
import { HARDHAT_DIR, makeService, testContext } from './datasets.fixtures.js';

const present = existsSync(path.join(HARDHAT_DIR, 'data.yaml'));
if (!present)
  console.warn(
    `[skip] hard-hat photo tests skipped: ${HARDHAT_DIR} is absent (expected ../shared/datasets/hardhat-real beside the project)`,
  );

describe.skipIf(!present)(`${DatasetService.name} on the real hard-hat photos`, () => {
  let db: SqliteDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let work: string;
  let v1: VersionResult;
  const ctx = testContext();

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'via-hh-'));
    db = new SqliteDb({ file: path.join(work, 'test.db') });
    await db.migrate();
    env = await makeService(db);
    v1 = await env.sut.import(ctx, {
      name: 'hardhat',
      description: 'real site photos',
      tags: ['real'],
      source: { kind: 'folder', path: HARDHAT_DIR },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
    await db?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('imports all 150 photos with their classes, and reports the empty label files', async () => {
    expect(v1.ref).toBe('hardhat@1');
    expect(v1.version.classNames).toEqual(['helmet', 'no_helmet', 'no_wear', 'wear']);
    const s = v1.version.stats;
    expect(s.images).toBe(150);
    expect(s.classes.reduce((n, c) => n + c.boxes, 0)).toBe(s.boxes);
    expect(s.boxes).toBeGreaterThan(150);
    expect(s.classes.every((c) => c.boxes > 0)).toBe(true);
    expect(s.imageSizes.buckets.reduce((n, b) => n + b.images, 0)).toBe(150);
    expect(s.imageSizes.minWidth).toBeGreaterThan(0);
    const report = await env.sut.report(ctx, 'hardhat@1');
    const empty = report.issues.find((g) => g.kind === 'empty_label');
    expect(empty?.warnings).toBeGreaterThan(0);
    // some of these labels are segmentation polygons; they become boxes instead of being dropped
    expect(report.issues.find((g) => g.kind === 'malformed_line')).toBeUndefined();
    expect(empty?.examples[0]?.file).toMatch(/^labels\/.+\.txt$/);
    expect(report.counts.backgroundImages).toBe(s.backgroundImages);
    expect(formatReport(report)).toMatch(/150 of 150 images imported/);
    expect((await env.sut.list(ctx))[0]).toMatchObject({
      name: 'hardhat',
      latestVersion: 1,
      images: 150,
      tags: ['real'],
    });
  });

  it('splits about 80/10/10 by content hash, the same way every time', async () => {
    const s = v1.version.stats;
    expect(s.splitMode).toBe('hash');
    expect(s.splits.train.images + s.splits.val.images + s.splits.test.images).toBe(150);
    expect(s.splits.train.images).toBeGreaterThan(105);
    expect(s.splits.val.images).toBeGreaterThan(4);
    expect(s.splits.test.images).toBeGreaterThan(4);
    const again = await env.sut.import(ctx, {
      name: 'hardhat-again',
      source: { kind: 'folder', path: HARDHAT_DIR },
    });
    const splitsOf = async (ref: string) =>
      new Map((await env.sut.listImages(ctx, ref, { limit: 1000 })).items.map((i) => [i.sha256, i.split]));
    expect(await splitsOf(again.ref)).toEqual(await splitsOf('hardhat@1'));
    const re = await env.sut.resplit(ctx, 'hardhat', { train: 0.5, val: 0.25, test: 0.25 });
    expect(re.ref).toBe('hardhat@2');
    expect(re.version.lineage).toMatchObject({ kind: 'resplit', parent: 'hardhat@1' });
    expect(re.version.stats.splits.train.images).toBeLessThan(s.splits.train.images);
    expect(re.version.stats.boxes).toBe(s.boxes);
    expect((await env.sut.get(ctx, 'hardhat')).version).toBe(2);
  });

  it('has thumbnails with boxes for a sample', async () => {
    const items = (await env.sut.listImages(ctx, 'hardhat@1', { limit: 1000 })).items;
    const withThumb = items.filter((i) => i.thumbnailKey !== null);
    expect(withThumb.length).toBe(24);
    expect((await env.storage.head(withThumb[0]!.thumbnailKey!))?.size).toBeGreaterThan(1000);
  });

  for (const format of ['yolo', 'coco'] as const) {
    it(`round-trips through a ${format} export`, async () => {
      const out = path.join(work, `export-${format}`);
      const exp = await env.sut.export(ctx, 'hardhat@1', { format, to: { kind: 'folder', path: out } });
      expect(exp).toMatchObject({ images: 150, kind: 'folder' });
      expect(await readdir(out)).toContain(format === 'yolo' ? 'data.yaml' : 'annotations.json');
      const back = await env.sut.import(ctx, {
        name: `hardhat-${format}`,
        source: { kind: 'folder', path: out },
      });
      expect(back.report.format).toBe(format);
      expect(back.version.classNames).toEqual(v1.version.classNames);
      expect(back.version.stats.splitMode).toBe('source');
      expect(back.version.stats.splits).toEqual(v1.version.stats.splits);
      expect(back.version.stats.classes).toEqual(v1.version.stats.classes);
      const original = new Map(
        (await env.sut.listImages(ctx, 'hardhat@1', { limit: 1000 })).items.map((i) => [i.sha256, i]),
      );
      for (const img of (await env.sut.listImages(ctx, back.ref, { limit: 1000 })).items) {
        const o = original.get(img.sha256)!;
        expect(img.split).toBe(o.split);
        expect(img.boxes.length).toBe(o.boxes.length);
        img.boxes.forEach((b, i) => expect(Math.abs(b.x1 - o.boxes[i]!.x1)).toBeLessThan(0.001));
      }
    });
  }

  it('exports a zip into storage', async () => {
    const exp = await env.sut.export(ctx, 'hardhat@1', { format: 'yolo', to: { kind: 'zip' } });
    expect(exp.kind).toBe('zip-storage');
    expect((await env.storage.head(exp.location))?.sha256).toBe(exp.sha256);
    const back = await env.sut.import(ctx, {
      name: 'hardhat-zip',
      source: { kind: 'zip', buffer: await env.storage.getBuffer(exp.location) },
    });
    expect(back.version.stats.images).toBe(150);
  });

  it('builds a training manifest that matches the train.start payload', async () => {
    const manifest = await env.sut.trainingManifest(ctx, 'hardhat@1', (key) =>
      env.storage.presignGet(key, 3600),
    );
    expect(() => messageSchemas['train.start'].shape.dataset.parse(manifest)).not.toThrow();
    expect(manifest).toMatchObject({ name: 'hardhat', version: 1, classNames: v1.version.classNames });
    expect(manifest.files).toHaveLength(300);
    const label = manifest.files.find((f) => f.path.startsWith('labels/train/'))!;
    expect(label.path).toMatch(/^labels\/train\/[0-9a-f]{64}\.txt$/);
    const image = manifest.files.find((f) => f.path.startsWith('images/val/'))!;
    expect(image.path).toMatch(/^images\/val\/[0-9a-f]{64}\.jpg$/);
    const sha = path.posix.basename(label.path, '.txt');
    const img = (await env.sut.listImages(ctx, 'hardhat@1', { limit: 1000 })).items.find(
      (i) => i.sha256 === sha,
    )!;
    const labelKey = `projects/default/labels/${label.sha256}.txt`;
    const text = await env.storage.getBuffer(labelKey);
    expect(createHash('sha256').update(text).digest('hex')).toBe(label.sha256);
    expect(text.length).toBe(label.size);
    expect(text.toString().trim().split('\n').filter(Boolean)).toHaveLength(img.boxes.length);
  });
});
