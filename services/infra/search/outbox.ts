import type { Kysely } from 'kysely';
import { z } from 'zod';
import { describeZodError, isPlatformError, PlatformError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import type { Cache, Lock } from '../cache/port.js';
import type { Db } from '../db/port.js';
import type { Database } from '../db/schema.js';
import { SEARCH_KINDS, type SearchDoc, type SearchIndex, type SearchKind } from './port.js';
import { docKey, searchDocSchema } from './schema.js';
import { OutboxCursor, type OutboxRow } from './outbox-cursor.js';
import { retry } from '../../../core/retry.js';

/** One pending index change: put a document, or take one out. */
export type OutboxOp = { op: 'upsert'; doc: SearchDoc } | { op: 'delete'; kind: SearchKind; id: string };

const outboxOpSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('upsert'), doc: searchDocSchema }),
  z.object({ op: z.literal('delete'), kind: z.enum(SEARCH_KINDS), id: z.string().min(1).max(128) }),
]);

/**
 * Records index changes in `search_outbox`. Call it with the transaction that changes the record, so the change
 * reaches the index exactly when that transaction commits; after the commit, `SearchIndexer.notify()` applies it promptly.
 */
export async function enqueueIndex(trx: Kysely<Database>, op: OutboxOp | OutboxOp[]): Promise<void> {
  const ops = Array.isArray(op) ? op : [op];
  if (ops.length === 0) return;
  const now = Date.now();
  const rows = ops.map((candidate, i) => {
    const parsed = outboxOpSchema.safeParse(candidate);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `invalid search index change #${i}: ${describeZodError(parsed.error)}`,
      );
    const o = parsed.data;
    return o.op === 'upsert'
      ? {
          kind: o.doc.kind,
          doc_id: o.doc.id,
          op: 'upsert' as const,
          doc: JSON.stringify(o.doc),
          created_at: now,
        }
      : { kind: o.kind, doc_id: o.id, op: 'delete' as const, doc: null, created_at: now };
  });
  await trx.insertInto('search_outbox').values(rows).execute();
}

/** Options of the outbox drainer. */
export interface SearchIndexerOptions {
  db: Pick<Db, 'kysely'>;
  index: SearchIndex;
  log: Logger;
  /** Outbox rows read per drain. */
  batchSize?: number;
  /** Poll interval when idle, and the first retry delay after a failure. */
  intervalMs?: number;
  /** Longest retry delay after repeated failures. */
  maxBackoffMs?: number;
  /** With a shared cache (Redis), instances take turns through a lock so drains never interleave. */
  cache?: Cache;
  /**
   * The index is this process's own (the embedded index, in memory): every process on the database
   * reads every change by its own cursor instead of taking turns and deleting what it applied, which
   * would leave the other processes' indexes behind.
   */
  ownIndex?: boolean;
  /** Called after changes reached the index (a drain that applied rows, a rebuild): cached search results are stale. */
  onApplied?: () => Promise<void>;
}

const LOCK_NAME = 'search-indexer';
const LOCK_TTL_MS = 30_000;
const REINDEX_BATCH = 500;

/**
 * Drains `search_outbox` into the search index: reads rows in `seq` order, keeps the last change per document,
 * applies it, then deletes only the rows it read. A failing index keeps the rows and is retried with backoff.
 */
export class SearchIndexer {
  private readonly db: Pick<Db, 'kysely'>;
  private readonly index: SearchIndex;
  private readonly log: Logger;
  private readonly batchSize: number;
  private readonly intervalMs: number;
  private readonly maxBackoffMs: number;
  private readonly cache: Cache | undefined;
  private readonly cursor: OutboxCursor | undefined;
  private readonly onApplied: (() => Promise<void>) | undefined;
  // Drains and reindexes of this instance run one after another.
  private chain: Promise<unknown> = Promise.resolve();
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private notified = false;
  private failures = 0;

  constructor({
    db,
    index,
    log,
    batchSize = 200,
    intervalMs = 1000,
    maxBackoffMs = 30_000,
    cache,
    ownIndex = false,
    onApplied,
  }: SearchIndexerOptions) {
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new PlatformError('invalid_input', `batchSize must be a positive integer, got ${batchSize}`);
    this.db = db;
    this.index = index;
    this.log = log;
    this.batchSize = batchSize;
    this.intervalMs = intervalMs;
    this.maxBackoffMs = maxBackoffMs;
    this.cache = ownIndex ? undefined : cache;
    this.cursor = ownIndex ? new OutboxCursor({ db }) : undefined;
    this.onApplied = onApplied;
  }

  /** Applies one batch of pending changes and returns how many outbox rows it consumed; throws when the index fails. */
  drainOnce(): Promise<number> {
    return this.serial(() => this.drainBatch());
  }

  /** Starts polling the outbox until `stop()`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Asks a started indexer to drain now (call after committing a transaction that enqueued changes). */
  notify(): void {
    this.notified = true;
    if (this.failures === 0) this.wake?.();
  }

  /** Stops polling and waits for the current drain to finish. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  /** Empties the index and fills it with every document `loadAll` yields; returns how many were indexed. */
  reindex(
    loadAll: () => AsyncIterable<SearchDoc>,
    opts: { onProgress?: (indexed: number) => void } = {},
  ): Promise<number> {
    return this.serial(async () => {
      const lock = await this.takeLock(true);
      try {
        // what is committed now is in what loadAll reads: a process-own index skips those rows
        await this.cursor?.skipCommitted();
        await this.index.clear();
        let count = 0;
        let batch: SearchDoc[] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          await this.index.upsert(batch);
          count += batch.length;
          batch = [];
          opts.onProgress?.(count);
          if (lock !== undefined && !(await lock.extend(LOCK_TTL_MS)))
            this.log.warn('search indexer lock lost during reindex');
        };
        for await (const doc of loadAll()) {
          batch.push(doc);
          if (batch.length >= REINDEX_BATCH) await flush();
        }
        await flush();
        await this.applied();
        this.log.info({ count }, 'search index rebuilt');
        return count;
      } finally {
        await lock?.release().catch(() => undefined);
      }
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async drainBatch(): Promise<number> {
    const lock = await this.takeLock(false);
    if (this.cache !== undefined && lock === undefined) return 0;
    try {
      const rows: OutboxRow[] =
        this.cursor !== undefined
          ? await this.cursor.next(this.batchSize)
          : await this.db.kysely
              .selectFrom('search_outbox')
              .select(['seq', 'kind', 'doc_id', 'op', 'doc', 'created_at'])
              .orderBy('seq', 'asc')
              .limit(this.batchSize)
              .execute();
      if (rows.length === 0) return 0;
      const latest = new Map<string, (typeof rows)[number]>();
      for (const row of rows) {
        const key = docKey({ kind: row.kind, id: row.doc_id });
        // Delete first so the map's order follows the last change, keeping upserts in commit order.
        latest.delete(key);
        latest.set(key, row);
      }
      const upserts: SearchDoc[] = [];
      const removals: Array<{ kind: SearchKind; id: string }> = [];
      for (const row of latest.values()) {
        const op = this.decode(row);
        if (op === undefined) continue;
        if (op.op === 'upsert') upserts.push(op.doc);
        else removals.push({ kind: op.kind, id: op.id });
      }
      try {
        if (removals.length > 0) await this.index.remove(removals);
        if (upserts.length > 0) await this.index.upsert(upserts);
      } catch (err) {
        if (!isRefusal(err)) throw err;
        // The index refused part of the batch (not an outage): apply one by one and drop only what it keeps refusing.
        await this.applyOneByOne(removals, upserts);
      }
      await this.applied();
      if (this.cursor !== undefined) await this.cursor.markApplied(rows);
      else
        await this.db.kysely
          .deleteFrom('search_outbox')
          .where(
            'seq',
            'in',
            rows.map((r) => r.seq),
          )
          .execute();
      return rows.length;
    } finally {
      await lock?.release().catch(() => undefined);
    }
  }

  private async applied(): Promise<void> {
    await this.onApplied?.().catch((err: Error) =>
      this.log.warn({ err: err.message }, 'could not drop cached search results after an index change'),
    );
  }

  private async applyOneByOne(
    removals: Array<{ kind: SearchKind; id: string }>,
    upserts: SearchDoc[],
  ): Promise<void> {
    const attempts = [
      ...removals.map((ref) => ({ key: docKey(ref), apply: () => this.index.remove([ref]) })),
      ...upserts.map((doc) => ({ key: docKey(doc), apply: () => this.index.upsert([doc]) })),
    ];
    for (const { key, apply } of attempts) {
      try {
        await apply();
      } catch (err) {
        if (!isRefusal(err)) throw err;
        this.log.error(
          { doc: key, err: (err as Error).message },
          'search index refused a document; change dropped, run `visioninapp reindex` after fixing it',
        );
      }
    }
  }

  /** Turns a row back into an op; a malformed row is logged with its seq and dropped so it never blocks the outbox. */
  private decode(row: {
    seq: number;
    kind: string;
    doc_id: string;
    op: string;
    doc: string | null;
  }): OutboxOp | undefined {
    let candidate: unknown;
    try {
      candidate =
        row.op === 'upsert'
          ? { op: 'upsert', doc: JSON.parse(row.doc ?? 'null') }
          : { op: row.op, kind: row.kind, id: row.doc_id };
    } catch (err) {
      this.log.error(
        { seq: row.seq, err: (err as Error).message },
        'search outbox row holds invalid JSON; dropped',
      );
      return undefined;
    }
    const parsed = outboxOpSchema.safeParse(candidate);
    if (!parsed.success) {
      this.log.error(
        { seq: row.seq, problem: describeZodError(parsed.error) },
        'search outbox row is malformed; dropped',
      );
      return undefined;
    }
    return parsed.data;
  }

  private async takeLock(wait: boolean): Promise<Lock | undefined> {
    const cache = this.cache;
    if (cache === undefined) return undefined;
    if (!wait) return cache.acquireLock(LOCK_NAME, LOCK_TTL_MS);
    const held = new PlatformError(
      'conflict',
      'another search indexer kept the indexer lock for 30 s; retry the reindex later',
    );
    return retry(
      async () => {
        const lock = await cache.acquireLock(LOCK_NAME, LOCK_TTL_MS);
        if (lock === undefined) throw held;
        return lock;
      },
      {
        retries: 1_000,
        minTimeout: 200,
        maxTimeout: 200,
        maxRetryTime: LOCK_TTL_MS,
        // only a held lock is waited for; a cache that fails is reported at once
        shouldRetry: (err) => err === held,
      },
    );
  }

  private async run(): Promise<void> {
    while (this.running) {
      let delay = this.intervalMs;
      this.notified = false;
      try {
        const drained = await this.drainOnce();
        if (this.failures > 0) this.log.info({ failures: this.failures }, 'search indexer recovered');
        this.failures = 0;
        if (drained >= this.batchSize || this.notified) continue;
      } catch (err) {
        this.failures += 1;
        delay = Math.min(this.intervalMs * 2 ** (this.failures - 1), this.maxBackoffMs);
        this.log.warn(
          { err: (err as Error).message, failures: this.failures, retryInMs: delay },
          'search index update failed; outbox rows kept for retry',
        );
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, delay);
        timer.unref();
        this.wake = done;
      });
    }
  }
}

/** True when the index rejected the request itself (a bad document), as opposed to being unreachable. */
function isRefusal(err: unknown): boolean {
  return isPlatformError(err, 'internal') || isPlatformError(err, 'invalid_input');
}
