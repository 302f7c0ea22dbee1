import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDb } from '../infra/db/sqlite.js';
import { DatasetUploads } from './dataset.upload.js';
import { jpeg, makeService, renameInZip, testContext, zipOf } from './datasets.fixtures.js';

const CHUNK = 128;

describe(DatasetUploads.name, () => {
  let db: SqliteDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let sut: DatasetUploads;
  let staging: string;
  const ctx = testContext();

  beforeAll(async () => {
    env = await makeService(
      await (async () => {
        db = new SqliteDb({ file: path.join(tmpdir(), `via-upl-${process.pid}-${Date.now()}.db`) });
        await db.migrate();
        return db;
      })(),
    );
    staging = path.join(env.dir, 'uploads');
    sut = new DatasetUploads({
      dir: staging,
      storage: env.storage,
      limits: { chunkBytes: CHUNK, maxBytes: 1_000_000 },
    });
  });
  afterAll(async () => {
    await env.cleanup();
    await db.close();
  });

  /** Sends `data` as `path` in chunks of the upload's size. */
  async function send(id: string, file: string, data: Buffer, from = 0): Promise<void> {
    for (let offset = from; offset < data.length; offset += CHUNK)
      await sut.writeChunk(ctx, id, { path: file, offset, data: data.subarray(offset, offset + CHUNK) });
  }

  it('takes a zip in chunks, resumes after a lost chunk, and imports it through a storage prefix', async () => {
    const files = {
      'set/data.yaml': 'names: [helmet]\n',
      'set/images/a.jpg': await jpeg(120, 80, 3),
      'set/labels/a.txt': '0 0.5 0.5 0.4 0.4\n',
    };
    const zip = await zipOf(Object.entries(files).map(([name, data]) => ({ name, data, compress: false })));
    expect(zip.length).toBeGreaterThan(4 * CHUNK);
    const up = await sut.begin(ctx, { files: [{ path: 'set.zip', size: zip.length }] });
    expect(up.kind).toBe('zip');
    // the first two chunks arrive, the third is lost: the status says where to resume
    await sut.writeChunk(ctx, up.id, { path: 'set.zip', offset: 0, data: zip.subarray(0, CHUNK) });
    await sut.writeChunk(ctx, up.id, {
      path: 'set.zip',
      offset: CHUNK,
      data: zip.subarray(CHUNK, 2 * CHUNK),
    });
    await expect(
      sut.writeChunk(ctx, up.id, {
        path: 'set.zip',
        offset: 3 * CHUNK,
        data: zip.subarray(3 * CHUNK, 4 * CHUNK),
      }),
    ).rejects.toMatchObject({ code: 'conflict', details: { received: 2 * CHUNK } });
    await expect(sut.finish(ctx, up.id)).rejects.toMatchObject({ code: 'conflict' });
    const status = await sut.status(ctx, up.id);
    expect(status.received).toBe(2 * CHUNK);
    // a chunk sent twice (its answer was lost) changes nothing
    await sut.writeChunk(ctx, up.id, {
      path: 'set.zip',
      offset: CHUNK,
      data: zip.subarray(CHUNK, 2 * CHUNK),
    });
    await send(up.id, 'set.zip', zip, status.files[0]!.received);
    expect((await sut.status(ctx, up.id)).complete).toBe(true);
    // staged files are the owner's only
    const home = path.join(staging, 'default', up.id);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(home, 'files', 'set.zip'))).mode & 0o777).toBe(0o600);
    const done = await sut.finish(ctx, up.id);
    expect(done.source).toBe(`storage:uploads/${up.id}`);
    expect(await readdir(path.join(staging, 'default'))).toEqual([]);
    const imported = await env.sut.import(ctx, {
      name: 'uploaded',
      source: { kind: 'storage', prefix: done.source.slice('storage:'.length) },
    });
    expect(imported.version.stats.images).toBe(1);
    expect(imported.version.stats.boxes).toBe(1);
  });

  it('takes a folder (as the browser names its files, under the folder name)', async () => {
    const img = await jpeg(64, 64, 5);
    const files = [
      { path: 'hats/data.yaml', data: Buffer.from('names: [helmet, head]\n') },
      { path: 'hats/images/b.jpg', data: img },
      { path: 'hats/labels/b.txt', data: Buffer.from('1 0.5 0.5 0.2 0.2\n') },
    ];
    const up = await sut.begin(ctx, { files: files.map((f) => ({ path: f.path, size: f.data.length })) });
    expect(up.kind).toBe('folder');
    for (const f of files) await send(up.id, f.path, f.data);
    const done = await sut.finish(ctx, up.id);
    const keys = (await env.storage.list(`projects/default/uploads/${up.id}/`)).map((o) =>
      o.key.split('/').pop(),
    );
    expect(keys.sort()).toEqual(['b.jpg', 'b.txt', 'data.yaml']);
    const imported = await env.sut.import(ctx, {
      name: 'folder-upload',
      source: { kind: 'storage', prefix: done.source.slice('storage:'.length) },
    });
    expect(imported.version.stats.classes.map((c: { name: string }) => c.name)).toEqual(['helmet', 'head']);
  });

  it('refuses unsafe paths, oversize uploads and chunks, viewers, and other projects', async () => {
    await expect(sut.begin(ctx, { files: [{ path: '../etc/passwd', size: 3 }] })).rejects.toMatchObject({
      code: 'invalid_input',
    });
    await expect(sut.begin(ctx, { files: [{ path: '/abs/a.jpg', size: 3 }] })).rejects.toMatchObject({
      code: 'invalid_input',
    });
    await expect(sut.begin(ctx, { files: [{ path: 'big.zip', size: 2_000_000 }] })).rejects.toThrow(
      /more than the limit/,
    );
    await expect(
      sut.begin(testContext('default', 'viewer'), { files: [{ path: 'a.zip', size: 3 }] }),
    ).rejects.toMatchObject({
      code: 'forbidden',
    });
    const up = await sut.begin(ctx, { files: [{ path: 'a.zip', size: 2000 }] });
    await expect(
      sut.writeChunk(ctx, up.id, { path: 'a.zip', offset: 0, data: Buffer.alloc(CHUNK + 1) }),
    ).rejects.toThrow(/at most 128 bytes/);
    await expect(
      sut.writeChunk(ctx, up.id, { path: 'other.zip', offset: 0, data: Buffer.alloc(10) }),
    ).rejects.toThrow(/not a file of upload/);
    await expect(sut.status(testContext('other-project'), up.id)).rejects.toMatchObject({
      code: 'not_found',
    });
    const stranger = { ...ctx, user: { ...ctx.user, userId: 'u-someone-else' } };
    await expect(sut.status(stranger, up.id)).rejects.toMatchObject({ code: 'not_found' });
    await rm(path.join(staging, 'default', up.id), { recursive: true });
  });

  it('refuses a zip that climbs out of its folder when the upload is finished', async () => {
    const zip = await zipOf([{ name: 'ok/data.yaml', data: 'names: [a]\n' }]);
    const evil = renameInZip(zip, 'ok/data.yaml', '../data.yaml');
    const up = await sut.begin(ctx, { files: [{ path: 'evil.zip', size: evil.length }] });
    await send(up.id, 'evil.zip', evil);
    await expect(sut.finish(ctx, up.id)).rejects.toThrow(/zip slip/);
  });
});
