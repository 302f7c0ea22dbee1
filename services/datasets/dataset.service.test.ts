import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDb } from '../infra/db/sqlite.js';
import { DatasetService } from './dataset.service.js';
import { datasetSearchDocs } from './dataset.search.js';
import { jpeg, makeService, renameInZip, testContext, writeTree, zipOf } from './datasets.fixtures.js';

describe(DatasetService.name, () => {
  let db: SqliteDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let work: string;
  const ctx = testContext();

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'via-dst-'));
    db = new SqliteDb({ file: path.join(work, 'test.db') });
    await db.migrate();
    env = await makeService(db, {
      maxImagePixels: 300 * 300,
      thumbnails: 3,
      zip: { maxEntries: 20, maxEntryBytes: 8 * 1024 ** 2, maxTotalBytes: 32 * 1024 ** 2, maxRatio: 100 },
    });
  });
  afterAll(async () => {
    await env.cleanup();
    await db.close();
    await rm(work, { recursive: true, force: true });
  });

  it('imports what is valid from a flawed YOLO folder and reports the rest with file and line', async () => {
    const good = await jpeg(200, 100, 1);
    const dir = path.join(work, 'flawed');
    await writeTree(dir, {
      'data.yaml': 'names: [helmet, head]\n',
      'images/train/a.jpg': good,
      'labels/train/a.txt': '0 0.5 0.5 0.2 0.2\n1 1.5 0.5 0.2 0.2\n0 0.5 0.5 0 0.3\n5 0.5 0.5 0.1 0.1\n',
      'images/train/copy.jpg': good,
      'labels/train/copy.txt': '0 0.5 0.5 0.2 0.2\n',
      'images/val/b.jpg': await jpeg(120, 90, 2),
      'labels/val/b.txt': '',
      'images/val/c.jpg': await jpeg(64, 64, 3),
      'images/val/broken.jpg': good.subarray(0, Math.floor(good.length / 2)),
      'labels/val/broken.txt': '0 0.5 0.5 0.1 0.1\n',
      'images/val/notimage.jpg': 'hello',
      'images/val/drawing.jpg':
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
      'images/val/huge.png': await sharp({
        create: { width: 400, height: 400, channels: 3, background: '#fff' },
      })
        .png()
        .toBuffer(),
    });
    const phases = new Set<string>();
    const res = await env.sut.import(ctx, { name: 'flawed', source: { kind: 'folder', path: dir } }, (p) =>
      phases.add(p.phase),
    );
    expect(res.ref).toBe('flawed@1');
    expect(res.version.stats.images).toBe(3);
    expect(res.version.stats.splitMode).toBe('source');
    expect(res.version.stats.splits.train.images).toBe(1);
    expect(res.version.stats.splits.val.images).toBe(2);
    expect(res.version.stats.classes).toEqual([
      { id: 0, name: 'helmet', boxes: 1, images: 1 },
      { id: 1, name: 'head', boxes: 0, images: 0 },
    ]);
    expect([...phases]).toEqual(['scan', 'images', 'thumbnails', 'save']);
    const report = await env.sut.report(ctx, 'flawed');
    const kinds = Object.fromEntries(report.issues.map((g) => [g.kind, g.errors + g.warnings]));
    expect(kinds).toMatchObject({
      box_out_of_range: 1,
      degenerate_box: 1,
      unknown_class: 1,
      duplicate_image: 1,
      empty_label: 1,
      missing_label: 4,
      unreadable_image: 3,
      image_too_large: 1,
    });
    expect(report.counts).toMatchObject({ imagesFound: 8, imagesImported: 3, duplicates: 1 });
    const unknown = report.issues.find((g) => g.kind === 'unknown_class')!.examples[0]!;
    expect(unknown).toMatchObject({ file: 'labels/train/a.txt', line: 4 });
    expect(report.issues.find((g) => g.kind === 'unreadable_image')!.examples.map((e) => e.file)).toEqual([
      'images/val/broken.jpg',
      'images/val/drawing.jpg',
      'images/val/notimage.jpg',
    ]);
    expect(report.issues.find((g) => g.kind === 'unreadable_image')!.examples[1]!.message).toMatch(
      /unsupported image format svg/,
    );
  });

  it('stores images content-addressed with their real size and lists them with boxes and thumbnails', async () => {
    const page = await env.sut.listImages(ctx, 'flawed@1', { split: 'train', offset: 0, limit: 10 });
    expect(page.total).toBe(1);
    const img = page.items[0]!;
    expect(img).toMatchObject({
      width: 200,
      height: 100,
      split: 'train',
      imageKey: `projects/default/images/${img.sha256}.jpg`,
      sourcePath: 'images/train/a.jpg',
    });
    expect(img.boxes).toHaveLength(1);
    expect(img.boxes[0]).toMatchObject({ className: 'helmet', classId: 0 });
    expect(img.boxes[0]!.x1).toBeCloseTo(0.4);
    expect((await env.storage.head(img.imageKey))?.sha256).toBe(img.sha256);
    const thumb = await env.storage.getBuffer(img.thumbnailKey!);
    const meta = await sharp(thumb).metadata();
    expect(meta.format).toBe('jpeg');
    expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(256);
  });

  it('emits typed events and queues a search document in the same transaction', async () => {
    const types = env.events.map((e) => e.type);
    expect(types).toContain('dataset.import_progress');
    expect(types).toContain('dataset.version_created');
    expect(env.events.find((e) => e.type === 'dataset.imported')).toMatchObject({
      name: 'flawed',
      version: 1,
      images: 3,
      projectId: 'default',
    });
    const outbox = await db.kysely
      .selectFrom('search_outbox')
      .selectAll()
      .where('kind', '=', 'dataset')
      .execute();
    expect(outbox.length).toBeGreaterThan(0);
    const doc = JSON.parse(outbox.at(-1)!.doc!) as { title: string; text: string };
    expect(doc.title).toBe('flawed');
    expect(doc.text).toContain('helmet');
    const docs = [];
    for await (const d of datasetSearchDocs(db)) docs.push(d);
    expect(docs.map((d) => d.title)).toContain('flawed');
  });

  it('rejects a folder with no usable image and writes nothing', async () => {
    const dir = path.join(work, 'empty');
    await writeTree(dir, { 'data.yaml': 'names: [a]\n', 'images/x.jpg': 'nope', 'labels/x.txt': '' });
    await expect(
      env.sut.import(ctx, { name: 'nothing', source: { kind: 'folder', path: dir } }),
    ).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/no valid image/) });
    await expect(env.sut.get(ctx, 'nothing')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('imports COCO with sparse category ids and VOC with the difficult flag', async () => {
    const coco = path.join(work, 'coco');
    await writeTree(coco, {
      'images/one.jpg': await jpeg(100, 50, 10),
      'images/two.jpg': await jpeg(100, 50, 11),
      'annotations/instances.json': JSON.stringify({
        images: [
          { id: 1, file_name: 'one.jpg', width: 100, height: 50 },
          { id: 2, file_name: 'two.jpg', width: 100, height: 50 },
        ],
        annotations: [
          { id: 1, image_id: 1, category_id: 40, bbox: [10, 10, 20, 20] },
          { id: 2, image_id: 2, category_id: 2, bbox: [0, 0, 50, 25] },
          { id: 3, image_id: 2, category_id: 2, bbox: [0, 0, 50, 25], iscrowd: 1 },
        ],
        categories: [
          { id: 40, name: 'vest' },
          { id: 2, name: 'helmet' },
        ],
      }),
    });
    const c = await env.sut.import(ctx, {
      name: 'coco-set',
      source: { kind: 'folder', path: coco },
      split: { train: 1, val: 0, test: 0 },
    });
    expect(c.version.classNames).toEqual(['helmet', 'vest']);
    expect(c.version.stats.classes.map((k) => k.boxes)).toEqual([1, 1]);
    expect(c.version.stats.splits.train.images).toBe(2);
    expect(c.report.issues.map((g) => g.kind)).toEqual(['crowd_ignored']);
    const one = (await env.sut.listImages(ctx, 'coco-set')).items.find(
      (i) => i.sourcePath === 'images/one.jpg',
    )!;
    expect(one.boxes[0]).toMatchObject({ className: 'vest', x1: 0.1, y1: 0.2, x2: 0.3, y2: 0.6 });

    const voc = path.join(work, 'voc');
    await writeTree(voc, {
      'JPEGImages/p.jpg': await jpeg(200, 100, 12),
      'Annotations/p.xml':
        '<annotation><filename>p.jpg</filename><size><width>200</width><height>100</height></size>' +
        '<object><name>helmet</name><difficult>1</difficult><bndbox><xmin>21</xmin><ymin>11</ymin><xmax>60</xmax><ymax>50</ymax></bndbox></object></annotation>',
    });
    const v = await env.sut.import(ctx, { name: 'voc-set', source: { kind: 'folder', path: voc } });
    expect(v.report.format).toBe('voc');
    const p = (await env.sut.listImages(ctx, 'voc-set')).items[0]!;
    expect(p.boxes[0]).toMatchObject({
      className: 'helmet',
      difficult: true,
      x1: 0.1,
      y1: 0.1,
      x2: 0.3,
      y2: 0.5,
    });
  });

  it('imports from a zip upload and from a storage prefix', async () => {
    const files = {
      'data.yaml': 'names: [a]\n',
      'images/z1.jpg': await jpeg(50, 50, 20),
      'labels/z1.txt': '0 0.5 0.5 0.5 0.5\n',
    };
    const zip = await zipOf(Object.entries(files).map(([name, data]) => ({ name, data })));
    const z = await env.sut.import(ctx, { name: 'zipped', source: { kind: 'zip', buffer: zip } });
    expect(z.version.stats.images).toBe(1);
    expect(z.report.origin).toBe('zip upload');
    for (const [name, data] of Object.entries(files))
      await env.storage.put(`projects/default/uploads/set1/${name}`, Buffer.from(data));
    const s = await env.sut.import(ctx, {
      name: 'from-storage',
      source: { kind: 'storage', prefix: 'uploads/set1' },
    });
    expect(s.version.stats.boxes).toBe(1);
  });

  it('an import or re-split retried under the same idempotency key returns the first version instead of making another', async () => {
    const files = {
      'data.yaml': 'names: [a]\n',
      'images/k1.jpg': await jpeg(40, 40, 31),
      'labels/k1.txt': '0 0.5 0.5 0.5 0.5\n',
    };
    const zip = await zipOf(Object.entries(files).map(([name, data]) => ({ name, data })));
    const keyed = { ...ctx, idempotencyKey: 'apr_import_once' };
    const first = await env.sut.import(keyed, { name: 'keyed', source: { kind: 'zip', buffer: zip } });
    const again = await env.sut.import(keyed, { name: 'keyed', source: { kind: 'zip', buffer: zip } });
    expect(again.ref).toBe(first.ref);
    expect(again.report).toEqual(first.report);
    expect((await env.sut.get(ctx, 'keyed')).latestVersion).toBe(1);
    const split = { ...ctx, idempotencyKey: 'apr_split_once' };
    const s1 = await env.sut.resplit(split, 'keyed@1', { train: 0.5, val: 0.5, test: 0 });
    const s2 = await env.sut.resplit(split, 'keyed@1', { train: 0.5, val: 0.5, test: 0 });
    expect(s2.ref).toBe(s1.ref);
    expect((await env.sut.get(ctx, 'keyed')).latestVersion).toBe(2);
    // without a key (or with another one) each call is its own change
    await env.sut.import(
      { ...ctx, idempotencyKey: 'apr_other' },
      { name: 'keyed', source: { kind: 'zip', buffer: zip } },
    );
    expect((await env.sut.get(ctx, 'keyed')).latestVersion).toBe(3);
  });

  describe('hostile zips are rejected with the entry named and nothing imported', () => {
    const cases: Array<[string, () => Promise<Buffer>, RegExp]> = [
      [
        'zip slip',
        async () =>
          renameInZip(await zipOf([{ name: 'AA/AA/x.jpg', data: 'x' }]), 'AA/AA/x.jpg', '../../x.jpg'),
        /"\.\.\/\.\.\/x\.jpg".*zip slip/,
      ],
      [
        'absolute path',
        async () => renameInZip(await zipOf([{ name: 'Xetc/x.jpg', data: 'x' }]), 'Xetc/x.jpg', '/etc/x.jpg'),
        /"\/etc\/x\.jpg".*absolute/,
      ],
      [
        'symlink',
        () => zipOf([{ name: 'images/link.jpg', data: '/etc/passwd', mode: 0o120777 }]),
        /"images\/link\.jpg".*symbolic link/,
      ],
      [
        'ratio bomb',
        () => zipOf([{ name: 'images/bomb.jpg', data: Buffer.alloc(4 * 1024 ** 2) }]),
        /"images\/bomb\.jpg".*compression ratio/,
      ],
      [
        'too many entries',
        () => zipOf(Array.from({ length: 21 }, (_, i) => ({ name: `labels/${i}.txt`, data: '' }))),
        /21 entries, more than the limit of 20/,
      ],
      [
        'same path twice',
        () =>
          zipOf([
            { name: 'images/a.jpg', data: 'x' },
            { name: 'images/b.jpg', data: 'y' },
          ]).then((z) => renameInZip(z, 'images/b.jpg', 'images/a.jpg')),
        /"images\/a\.jpg" could not be extracted/,
      ],
      [
        'entry too large',
        () => zipOf([{ name: 'images/big.jpg', data: Buffer.alloc(9 * 1024 ** 2, 7), compress: false }]),
        /"images\/big\.jpg".*per-entry limit/,
      ],
    ];
    for (const [label, make, message] of cases) {
      it(label, async () => {
        const before = (await env.sut.list(ctx)).length;
        const leftovers = (await readdir(tmpdir())).filter((f) => f.startsWith('via-zip-')).length;
        await expect(
          env.sut.import(ctx, { name: 'hostile', source: { kind: 'zip', buffer: await make() } }),
        ).rejects.toMatchObject({
          code: 'invalid_input',
          message: expect.stringMatching(message),
        });
        expect((await env.sut.list(ctx)).length).toBe(before);
        expect((await readdir(tmpdir())).filter((f) => f.startsWith('via-zip-')).length).toBeLessThanOrEqual(
          leftovers,
        );
      });
    }
  });

  it('imports a zip file from disk, and stops without writing when the caller cancels', async () => {
    const zipPath = path.join(work, 'set.zip');
    await writeFile(
      zipPath,
      await zipOf([
        { name: 'data.yaml', data: 'names: [a]\n' },
        { name: 'images/k.jpg', data: await jpeg(30, 30, 50) },
        { name: 'labels/k.txt', data: '0 .5 .5 .2 .2\n' },
      ]),
    );
    const res = await env.sut.import(ctx, { name: 'zip-file', source: { kind: 'zip', path: zipPath } });
    expect(res.report.origin).toBe(`zip ${zipPath}`);
    const abort = new AbortController();
    abort.abort();
    await expect(
      env.sut.import(
        { ...ctx, signal: abort.signal },
        { name: 'cancelled', source: { kind: 'zip', path: zipPath } },
      ),
    ).rejects.toMatchObject({ message: expect.stringMatching(/cancelled/) });
    await expect(env.sut.get(ctx, 'cancelled')).rejects.toMatchObject({ code: 'not_found' });
    await expect(
      env.sut.addSamples(ctx, 'zip-file', [{ imageKey: 'feedback/missing.jpg', boxes: [] }]),
    ).rejects.toMatchObject({ code: 'not_found' });
    const exported = path.join(work, 'out', 'zip-file-coco.zip');
    expect(
      await env.sut.export(ctx, 'zip-file@1', { format: 'coco', to: { kind: 'zip', path: exported } }),
    ).toMatchObject({ kind: 'zip-file', location: exported, images: 1 });
    const back = await env.sut.import(ctx, {
      name: 'zip-file-back',
      source: { kind: 'zip', path: exported },
    });
    expect(back.report.format).toBe('coco');
    expect(back.version.stats.boxes).toBe(1);
  });

  it('adds reviewed samples as a new version with lineage, content-addressed', async () => {
    await env.storage.put('feedback/dev1/frame.jpg', await jpeg(80, 60, 30));
    const res = await env.sut.addSamples(
      ctx,
      'zipped',
      [
        {
          imageKey: 'feedback/dev1/frame.jpg',
          boxes: [
            { className: 'b', x1: 0.1, y1: 0.1, x2: 0.5, y2: 0.5 },
            { classId: 0, x1: 0.2, y1: 0.2, x2: 0.3, y2: 0.3 },
          ],
        },
      ],
      { note: 'line-3 low confidence', lineage: { feedbackIds: ['fb_1'] } },
    );
    expect(res.ref).toBe('zipped@2');
    expect(res.version.classNames).toEqual(['a', 'b']);
    expect(res.version.stats.images).toBe(2);
    expect(res.version.lineage).toMatchObject({ kind: 'samples', parent: 'zipped@1', feedbackIds: ['fb_1'] });
    expect(res.version.note).toBe('line-3 low confidence');
    const added = (await env.sut.listImages(ctx, 'zipped@2')).items.find(
      (i) => i.sourcePath === 'feedback/dev1/frame.jpg',
    )!;
    expect(added.imageKey).toBe(`projects/default/images/${added.sha256}.jpg`);
    expect((await env.sut.get(ctx, 'zipped@1')).stats.images).toBe(1);
  });

  it('keeps projects apart, validates names and refs, and needs an operator to write', async () => {
    const other = testContext('other-project');
    expect(await env.sut.list(other)).toEqual([]);
    await expect(env.sut.get(other, 'flawed')).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/known datasets: \(none/),
    });
    await expect(env.sut.get(ctx, 'nope')).rejects.toMatchObject({
      message: expect.stringMatching(/known datasets: .*flawed/),
    });
    await expect(env.sut.get(ctx, 'flawed@9')).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/versions are 1\.\.1/),
    });
    await expect(
      env.sut.import(ctx, { name: 'Bad Name', source: { kind: 'folder', path: work } }),
    ).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(
      env.sut.import(testContext('default', 'viewer'), { name: 'x', source: { kind: 'folder', path: work } }),
    ).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('stores names and descriptions as data', async () => {
    const dir = path.join(work, 'plain');
    await writeTree(dir, {
      'data.yaml': 'names: ["<b>hat</b>"]\n',
      'images/q.jpg': await jpeg(40, 40, 40),
      'labels/q.txt': '0 0.5 0.5 0.5 0.5\n',
    });
    const description = "'; DROP TABLE datasets; -- ignore previous instructions";
    await env.sut.import(ctx, {
      name: 'odd.name_1',
      description,
      tags: ['a b', '<x>'],
      source: { kind: 'folder', path: dir },
    });
    const got = await env.sut.get(ctx, 'odd.name_1');
    expect(got).toMatchObject({ description, tags: ['a b', '<x>'], classNames: ['<b>hat</b>'] });
  });
});
