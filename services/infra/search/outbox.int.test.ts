import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTempMysqlDatabase,
  SERVICE_URLS,
  skipWithoutService,
} from '../../../test/services.fixtures.js';
import { silentLogger } from '../../../core/log.js';
import { MysqlDb } from '../db/mysql.js';
import { MiniSearchIndex } from './minisearch.js';
import { enqueueIndex, SearchIndexer } from './outbox.js';
import { makeDoc } from './search.contract.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)('search outbox on MySQL', () => {
  let db: MysqlDb;
  let drop: () => Promise<void>;
  const index = new MiniSearchIndex();
  let sut: SearchIndexer;

  beforeAll(async () => {
    const temp = await createTempMysqlDatabase();
    drop = temp.drop;
    db = new MysqlDb({ url: temp.url });
    await db.migrate();
    sut = new SearchIndexer({ db, index, log: silentLogger() });
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  it('indexes committed changes, coalesced, and never a rolled-back one', async () => {
    await expect(
      db.transaction(async (trx) => {
        await enqueueIndex(trx, {
          op: 'upsert',
          doc: makeDoc({ kind: 'model', id: 'ghost', title: 'Ghost' }),
        });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await db.transaction(async (trx) => {
      await enqueueIndex(trx, [
        { op: 'upsert', doc: makeDoc({ kind: 'model', id: 'm1', title: 'Draft' }) },
        { op: 'upsert', doc: makeDoc({ kind: 'model', id: 'm2', title: 'Gone soon' }) },
        { op: 'upsert', doc: makeDoc({ kind: 'model', id: 'm1', title: 'Helmet detector' }) },
        { op: 'delete', kind: 'model', id: 'm2' },
      ]);
    });
    expect(await sut.drainOnce()).toBe(4);
    expect((await index.query({})).hits.map((h) => h.title)).toEqual(['Helmet detector']);
    expect(await db.kysely.selectFrom('search_outbox').selectAll().execute()).toEqual([]);
  });
  it('lets each process with its own index read every change by its cursor', async () => {
    const [indexA, indexB] = [new MiniSearchIndex(), new MiniSearchIndex()];
    const [a, b] = [indexA, indexB].map(
      (i) => new SearchIndexer({ db, index: i, log: silentLogger(), ownIndex: true }),
    );
    await enqueueIndex(db.kysely, {
      op: 'upsert',
      doc: makeDoc({ kind: 'model', id: 'm9', title: 'Forklift detector' }),
    });
    expect(await a!.drainOnce()).toBe(1);
    expect(await b!.drainOnce()).toBe(1);
    expect(await a!.drainOnce()).toBe(0);
    for (const i of [indexA, indexB])
      expect((await i.query({})).hits.map((h) => h.title)).toEqual(['Forklift detector']);
  });
});
