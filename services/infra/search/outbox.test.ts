import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPlatformError, PlatformError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import { MemoryCache } from '../cache/memory.js';
import { SqliteDb } from '../db/sqlite.js';
import { MiniSearchIndex } from './minisearch.js';
import { enqueueIndex, SearchIndexer } from './outbox.js';
import type { SearchDoc, SearchIndex } from './port.js';
import { makeDoc } from './search.contract.js';

const dataset = (id: string, title: string, updatedAt = 1): SearchDoc =>
  makeDoc({ kind: 'dataset', id, title, updatedAt });

/** An index that fails while `failing` is set, standing in for Elasticsearch being down. */
class FlakyIndex extends MiniSearchIndex {
  failing = false;
  override async upsert(docs: SearchDoc[]): Promise<void> {
    if (this.failing) throw new Error('index down');
    return super.upsert(docs);
  }
  override async remove(refs: Parameters<SearchIndex['remove']>[0]): Promise<void> {
    if (this.failing) throw new Error('index down');
    return super.remove(refs);
  }
}

describe(SearchIndexer.name, () => {
  let db: SqliteDb;
  let index: FlakyIndex;
  let sut: SearchIndexer;
  const pending = async () => (await db.kysely.selectFrom('search_outbox').select('seq').execute()).length;
  const titles = async (text?: string) => (await index.query({ text })).hits.map((h) => h.title);

  beforeEach(async () => {
    db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
    index = new FlakyIndex();
    sut = new SearchIndexer({ db, index, log: silentLogger(), intervalMs: 20, maxBackoffMs: 100 });
  });
  afterEach(async () => {
    await sut.stop();
    await db.close();
  });

  it('never indexes a write whose transaction rolled back', async () => {
    await expect(
      db.transaction(async (trx) => {
        await trx
          .insertInto('projects')
          .values({ id: 'p1', name: 'one', description: '', created_at: 1 })
          .execute();
        await enqueueIndex(trx, { op: 'upsert', doc: dataset('d1', 'Helmets') });
        throw new Error('domain failure');
      }),
    ).rejects.toThrow('domain failure');
    expect(await sut.drainOnce()).toBe(0);
    expect(await titles()).toEqual([]);
  });

  it('indexes a committed write after a drain and removes the drained rows', async () => {
    await db.transaction(async (trx) => {
      await enqueueIndex(trx, { op: 'upsert', doc: dataset('d1', 'Helmets') });
    });
    expect(await titles()).toEqual([]);
    expect(await sut.drainOnce()).toBe(1);
    expect(await titles('helmets')).toEqual(['Helmets']);
    expect(await pending()).toBe(0);
    expect(await sut.drainOnce()).toBe(0);
  });

  it('keeps the rows when the index fails and applies them on the next drain', async () => {
    await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d1', 'Helmets') });
    index.failing = true;
    await expect(sut.drainOnce()).rejects.toThrow('index down');
    expect(await pending()).toBe(1);
    index.failing = false;
    expect(await sut.drainOnce()).toBe(1);
    expect(await titles()).toEqual(['Helmets']);
  });

  it('applies deletes', async () => {
    await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d1', 'Helmets') });
    await sut.drainOnce();
    await enqueueIndex(db.kysely, { op: 'delete', kind: 'dataset', id: 'd1' });
    expect(await sut.drainOnce()).toBe(1);
    expect(await titles()).toEqual([]);
  });

  it('coalesces several changes to one document into the last one', async () => {
    const upserts: string[] = [];
    const original = index.upsert.bind(index);
    index.upsert = async (docs) => {
      upserts.push(...docs.map((d) => `${d.id}:${d.title}`));
      return original(docs);
    };
    await enqueueIndex(db.kysely, [
      { op: 'upsert', doc: dataset('d1', 'First') },
      { op: 'upsert', doc: dataset('d2', 'Other') },
      { op: 'upsert', doc: dataset('d1', 'Second') },
      { op: 'delete', kind: 'dataset', id: 'd2' },
      { op: 'upsert', doc: dataset('d1', 'Third') },
      { op: 'delete', kind: 'dataset', id: 'd3' },
      { op: 'upsert', doc: dataset('d3', 'Back again') },
    ]);
    expect(await sut.drainOnce()).toBe(7);
    expect(upserts).toEqual(['d1:Third', 'd3:Back again']);
    expect((await titles()).sort()).toEqual(['Back again', 'Third']);
  });

  it('drops only the document the index refuses, with a log line, and indexes the rest of the batch', async () => {
    const original = index.upsert.bind(index);
    index.upsert = async (docs) => {
      if (docs.some((d) => d.id === 'poison'))
        throw new PlatformError('internal', 'Elasticsearch rejected poison');
      return original(docs);
    };
    await enqueueIndex(db.kysely, [
      { op: 'upsert', doc: dataset('d1', 'Helmets') },
      { op: 'upsert', doc: dataset('poison', 'Poison') },
      { op: 'upsert', doc: dataset('d2', 'Vests') },
    ]);
    expect(await sut.drainOnce()).toBe(3);
    expect((await titles()).sort()).toEqual(['Helmets', 'Vests']);
    expect(await pending()).toBe(0);
  });

  it('drains in batches of batchSize in seq order', async () => {
    const small = new SearchIndexer({ db, index, log: silentLogger(), batchSize: 2 });
    for (let i = 1; i <= 5; i++)
      await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset(`d${i}`, `Doc ${i}`) });
    expect(await small.drainOnce()).toBe(2);
    expect((await titles()).sort()).toEqual(['Doc 1', 'Doc 2']);
    expect(await small.drainOnce()).toBe(2);
    expect(await small.drainOnce()).toBe(1);
    expect(await small.drainOnce()).toBe(0);
  });

  it('rejects a malformed change inside the transaction, which then rolls back', async () => {
    const err = await db
      .transaction(async (trx) => {
        await enqueueIndex(trx, { op: 'upsert', doc: dataset('d1', 'Fine') });
        await enqueueIndex(trx, { op: 'upsert', doc: { ...dataset('d2', 'Bad'), kind: 'nope' as never } });
      })
      .catch((e: unknown) => e);
    expect(isPlatformError(err, 'invalid_input')).toBe(true);
    expect(await pending()).toBe(0);
  });

  it('drops a corrupt outbox row with a log line instead of blocking the rows behind it', async () => {
    await db.kysely
      .insertInto('search_outbox')
      .values({ kind: 'dataset', doc_id: 'bad', op: 'upsert', doc: '{not json', created_at: 1 })
      .execute();
    await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d1', 'Helmets') });
    expect(await sut.drainOnce()).toBe(2);
    expect(await titles()).toEqual(['Helmets']);
    expect(await pending()).toBe(0);
  });

  it('drains promptly after notify() once started, and retries with backoff when the index fails', async () => {
    sut = new SearchIndexer({ db, index, log: silentLogger(), intervalMs: 60_000, maxBackoffMs: 50 });
    sut.start();
    await new Promise((r) => setTimeout(r, 20));
    await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d1', 'Helmets') });
    sut.notify();
    await expect.poll(titles, { timeout: 2000, interval: 10 }).toEqual(['Helmets']);
    await sut.stop();

    // A failing index with a 20 ms first delay and 50 ms cap: the loop keeps retrying on its own.
    sut = new SearchIndexer({ db, index, log: silentLogger(), intervalMs: 20, maxBackoffMs: 50 });
    index.failing = true;
    await enqueueIndex(db.kysely, { op: 'delete', kind: 'dataset', id: 'd1' });
    sut.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(await pending()).toBe(1);
    index.failing = false;
    await expect.poll(pending, { timeout: 2000, interval: 10 }).toBe(0);
    expect(await titles()).toEqual([]);
  });

  it('takes turns through the cache lock when several instances share one outbox', async () => {
    const cache = new MemoryCache();
    const a = new SearchIndexer({ db, index, log: silentLogger(), cache });
    const b = new SearchIndexer({ db, index, log: silentLogger(), cache });
    const lock = await cache.acquireLock('search-indexer', 5000);
    await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d1', 'Helmets') });
    expect(await a.drainOnce()).toBe(0);
    await lock!.release();
    const drained = await Promise.all([a.drainOnce(), b.drainOnce()]);
    expect(drained.reduce((x, y) => x + y, 0)).toBe(1);
    expect(await titles()).toEqual(['Helmets']);
  });

  describe('when each process has its own index (embedded search, several processes on one database)', () => {
    const own = (i: SearchIndex) => new SearchIndexer({ db, index: i, log: silentLogger(), ownIndex: true });
    const row = (seq: number, doc: SearchDoc, createdAt = Date.now()) =>
      db.kysely
        .insertInto('search_outbox')
        .values({
          seq,
          kind: doc.kind,
          doc_id: doc.id,
          op: 'upsert',
          doc: JSON.stringify(doc),
          created_at: createdAt,
        })
        .execute();
    const titlesOf = async (i: SearchIndex) => (await i.query({})).hits.map((h) => h.title).sort();

    it('lets every process apply every change, and keeps the rows for the others', async () => {
      const [indexA, indexB] = [new MiniSearchIndex(), new MiniSearchIndex()];
      const [a, b] = [own(indexA), own(indexB)];
      await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d1', 'Helmets') });
      expect(await a.drainOnce()).toBe(1);
      expect(await a.drainOnce()).toBe(0);
      // the shared-index drainer deleted what it applied, and a second process never saw it
      expect(await b.drainOnce()).toBe(1);
      expect(await titlesOf(indexA)).toEqual(['Helmets']);
      expect(await titlesOf(indexB)).toEqual(['Helmets']);
      expect(await pending()).toBe(1);
    });

    it('applies a row numbered below its cursor that committed late', async () => {
      const mine = new MiniSearchIndex();
      const a = own(mine);
      await row(10, dataset('d10', 'Later transaction'));
      expect(await a.drainOnce()).toBe(1);
      // a transaction that took its number before 10 commits after it was read
      await row(7, dataset('d7', 'Earlier transaction'));
      expect(await a.drainOnce()).toBe(1);
      expect(await a.drainOnce()).toBe(0);
      expect(await titlesOf(mine)).toEqual(['Earlier transaction', 'Later transaction']);
    });

    it('after a rebuild from the database, applies only what committed since', async () => {
      const mine = new MiniSearchIndex();
      const a = own(mine);
      await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d1', 'Old title') });
      async function* loadAll() {
        yield dataset('d1', 'Title in the database');
      }
      await a.reindex(loadAll);
      expect(await a.drainOnce()).toBe(0);
      expect(await titlesOf(mine)).toEqual(['Title in the database']);
      await enqueueIndex(db.kysely, { op: 'upsert', doc: dataset('d2', 'Added after') });
      expect(await a.drainOnce()).toBe(1);
      expect(await titlesOf(mine)).toEqual(['Added after', 'Title in the database']);
    });

    it('prunes rows older than an hour once it has read them', async () => {
      const a = own(new MiniSearchIndex());
      await row(1, dataset('old', 'Two hours old'), Date.now() - 2 * 3_600_000);
      await row(2, dataset('new', 'Fresh'));
      expect(await a.drainOnce()).toBe(2);
      const left = await db.kysely.selectFrom('search_outbox').select('doc_id').execute();
      expect(left.map((r) => r.doc_id)).toEqual(['new']);
    });
  });

  it('reindexes from the database, replacing whatever the index held', async () => {
    await index.upsert([dataset('stale', 'Stale entry')]);
    async function* loadAll() {
      for (let i = 0; i < 1200; i++) yield dataset(`d${i}`, `Dataset ${i}`, i);
    }
    const progress: number[] = [];
    expect(await sut.reindex(loadAll, { onProgress: (n) => progress.push(n) })).toBe(1200);
    expect(progress).toEqual([500, 1000, 1200]);
    const all = await index.query({ limit: 1 });
    expect(all.total).toBe(1200);
    expect(all.hits[0]!.title).toBe('Dataset 1199');
    expect((await index.query({ text: 'stale' })).total).toBe(0);
  });
});
