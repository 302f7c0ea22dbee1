import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../../test/services.fixtures.js';
import { MysqlDb } from '../infra/db/mysql.js';
import { DatasetService } from './dataset.service.js';
import { datasetSearchDocs } from './dataset.search.js';
import { jpeg, makeService, testContext, writeTree } from './datasets.fixtures.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)(`${DatasetService.name} on MariaDB`, () => {
  let temp: Awaited<ReturnType<typeof createTempMysqlDatabase>>;
  let db: MysqlDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let work: string;
  const ctx = testContext('proj-a');

  beforeAll(async () => {
    temp = await createTempMysqlDatabase();
    db = new MysqlDb({ url: temp.url });
    await db.migrate();
    env = await makeService(db, { thumbnails: 2 });
    work = await mkdtemp(path.join(tmpdir(), 'via-dsm-'));
    const files: Record<string, string | Buffer> = { 'data.yaml': 'names:\n  0: helmet\n  1: head\n' };
    for (let i = 0; i < 230; i++) {
      const split = i % 10 === 0 ? 'val' : 'train';
      files[`images/${split}/img${i}.jpg`] = await jpeg(24 + (i % 7), 16 + (i % 5), i);
      files[`labels/${split}/img${i}.txt`] = i % 3 === 0 ? '' : `${i % 2} 0.5 0.5 0.4 0.4\n`;
    }
    files['labels/train/img1.txt'] = '0 0.5 0.5 0.4 0.4\n9 0.5 0.5 0.1 0.1\n';
    await writeTree(path.join(work, 'src'), files);
  });
  afterAll(async () => {
    await env?.cleanup();
    await db?.close();
    await temp?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('imports, pages images, re-splits, adds samples and exports, in one transaction per version', async () => {
    const res = await env.sut.import(ctx, {
      name: 'helmets-m',
      description: 'MariaDB run',
      tags: ['int'],
      source: { kind: 'folder', path: path.join(work, 'src') },
    });
    expect(res.ref).toBe('helmets-m@1');
    expect(res.version.stats).toMatchObject({ images: 230, splitMode: 'source' });
    expect(res.version.stats.splits.val.images).toBe(23);
    expect(res.report.issues.find((g) => g.kind === 'unknown_class')?.examples[0]).toMatchObject({
      file: 'labels/train/img1.txt',
      line: 2,
    });

    const page = await env.sut.listImages(ctx, 'helmets-m@1', { split: 'train', offset: 200, limit: 50 });
    expect(page.total).toBe(207);
    expect(page.items).toHaveLength(7);

    const re = await env.sut.resplit(ctx, 'helmets-m', { train: 0.7, val: 0.2, test: 0.1 });
    expect(re.ref).toBe('helmets-m@2');
    expect(re.version.stats.splits.test.images).toBeGreaterThan(0);

    await env.storage.put('feedback/s1.jpg', await jpeg(30, 30, 999));
    const added = await env.sut.addSamples(
      ctx,
      'helmets-m@2',
      [{ imageKey: 'feedback/s1.jpg', boxes: [{ classId: 1, x1: 0.1, y1: 0.1, x2: 0.9, y2: 0.9 }] }],
      { lineage: { review: 'r1' } },
    );
    expect(added.version.stats.images).toBe(231);
    expect(added.version.lineage).toMatchObject({ parent: 'helmets-m@2', review: 'r1' });

    const out = path.join(work, 'coco-out');
    await env.sut.export(ctx, 'helmets-m@3', { format: 'coco', to: { kind: 'folder', path: out } });
    const back = await env.sut.import(ctx, { name: 'helmets-m-coco', source: { kind: 'folder', path: out } });
    expect(back.version.stats.classes.map((c) => c.boxes)).toEqual(
      added.version.stats.classes.map((c) => c.boxes),
    );

    expect((await env.sut.list(ctx)).map((d) => [d.name, d.latestVersion])).toEqual([
      ['helmets-m', 3],
      ['helmets-m-coco', 1],
    ]);
    expect(await env.sut.list(testContext('proj-b'))).toEqual([]);
    const docs = [];
    for await (const d of datasetSearchDocs(db)) docs.push(d);
    expect(docs.find((d) => d.title === 'helmets-m')).toMatchObject({
      projectId: 'proj-a',
      tags: ['int'],
      fields: { latestVersion: 3 },
    });
    const outbox = await db.kysely
      .selectFrom('search_outbox')
      .select('doc_id')
      .where('kind', '=', 'dataset')
      .execute();
    expect(outbox.length).toBe(4);
  });

  it('rejects a stale concurrent write instead of overwriting a version', async () => {
    const results = await Promise.allSettled([
      env.sut.resplit(ctx, 'helmets-m-coco', { train: 0.5, val: 0.5, test: 0 }),
      env.sut.resplit(ctx, 'helmets-m-coco', { train: 0.6, val: 0.4, test: 0 }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'conflict' });
    const versions = await env.sut.listVersions(ctx, 'helmets-m-coco');
    expect(versions.map((v) => v.version)).toEqual(
      Array.from({ length: versions.length }, (_, i) => versions.length - i),
    );
  });
});
