import type { Kysely } from 'kysely';
import { LRUCache } from 'lru-cache';
import type { ChannelVersions } from '@langchain/langgraph-checkpoint';
import type { Database } from '../services/infra/db/schema.js';

/** A row of `agent_checkpoints`. */
export type CheckpointRow = Database['agent_checkpoints'];
/** A row of `agent_checkpoint_writes`. */
export type WriteRow = Database['agent_checkpoint_writes'];
/** A row of `agent_checkpoint_blobs`. */
export type BlobRow = Database['agent_checkpoint_blobs'];

/** `writes` after storing `special` (replacing the same task and index) and `regular` (kept as first written). */
function mergeWrites(writes: WriteRow[], special: WriteRow[], regular: WriteRow[]): WriteRow[] {
  const same = (a: WriteRow, b: WriteRow) => a.task_id === b.task_id && a.idx === b.idx;
  const kept = writes.filter((w) => !special.some((x) => same(x, w)));
  const added = regular.filter((r) => !writes.some((w) => same(r, w)));
  return [...kept, ...special, ...added];
}

/** What this saver last wrote for a thread: its newest checkpoint with every blob it refers to and its writes so far. */
export interface Written {
  row: CheckpointRow;
  writes: WriteRow[];
  /** Keyed `channel\0version`; only the versions the checkpoint refers to. */
  blobs: Map<string, BlobRow>;
}

const blobKey = (channel: string, version: string | number) => `${channel}\0${String(version)}`;

/**
 * The newest checkpoint this process wrote per thread, so reading it back (the graph does, right
 * after writing) costs one query that checks it is still the newest with the same writes, instead
 * of three. Another instance writing the thread makes the check fail and the read go to the database.
 */
export class CheckpointMemo {
  private readonly written = new LRUCache<string, Written>({ max: 2000 });
  /** putWrites calls in progress per thread, and whether two overlapped. */
  private readonly inflight = new Map<string, { count: number; overlapped: boolean }>();
  /** Writes stored for a checkpoint this saver has not remembered yet, by thread, namespace and checkpoint id. */
  private readonly early = new LRUCache<string, WriteRow[]>({ max: 2000 });

  constructor(private readonly db: Kysely<Database>) {}

  /** What this process wrote last for the thread and namespace (`thread\0ns`), when no write to it is in progress. */
  settled(key: string): Written | undefined {
    return this.inflight.has(key) ? undefined : this.written.get(key);
  }

  /** Forgets every namespace of a thread. */
  forgetThread(threadId: string): void {
    for (const key of [...this.written.keys()]) if (key.startsWith(`${threadId}\0`)) this.written.delete(key);
  }

  /**
   * Stores writes of a checkpoint through `store` and keeps the memo in step: special channels
   * replace their earlier write, regular ones are kept as first written; overlapping calls of one
   * thread may complete in another order than they committed, so the memo is dropped then.
   */
  async writes(
    key: string,
    checkpointId: string,
    special: WriteRow[],
    regular: WriteRow[],
    store: () => Promise<void>,
  ): Promise<void> {
    const state = this.inflight.get(key) ?? { count: 0, overlapped: false };
    state.count++;
    if (state.count > 1) state.overlapped = true;
    this.inflight.set(key, state);
    try {
      await store();
    } catch (err) {
      this.written.delete(key);
      throw err;
    } finally {
      state.count--;
      if (state.count === 0) this.inflight.delete(key);
    }
    const mine = this.written.get(key);
    if (state.overlapped) {
      this.written.delete(key);
      if (state.count === 0) state.overlapped = false;
      return;
    }
    if (mine?.row.checkpoint_id === checkpointId) {
      this.written.set(key, { ...mine, writes: mergeWrites(mine.writes, special, regular) });
      return;
    }
    // Writes may reach a checkpoint before `put` has remembered it (checkpoints are written asynchronously): keep them for it.
    const early = `${key}\0${checkpointId}`;
    this.early.set(early, mergeWrites(this.early.get(early) ?? [], special, regular));
  }

  /**
   * Remembers what `put` just wrote. The blobs of unchanged channels come from the memo of its parent,
   * so a thread's memo chain starts at its first checkpoint (no parent) and breaks when another
   * instance wrote the parent; a version no blob was written for has none in the database either.
   */
  remember(
    threadId: string,
    ns: string,
    row: CheckpointRow,
    blobs: BlobRow[],
    versions: ChannelVersions,
  ): void {
    const key = `${threadId}\0${ns}`;
    const previous = this.written.get(key);
    this.written.delete(key);
    if (row.parent_checkpoint_id !== null && previous?.row.checkpoint_id !== row.parent_checkpoint_id) return;
    const known = new Map<string, BlobRow>(row.parent_checkpoint_id === null ? [] : previous?.blobs);
    for (const b of blobs) known.set(blobKey(b.channel, b.version), b);
    const refs = new Map<string, BlobRow>();
    for (const [channel, version] of Object.entries(versions ?? {})) {
      const blob = known.get(blobKey(channel, version));
      if (blob !== undefined) refs.set(blobKey(channel, version), blob);
    }
    const early = `${key}\0${row.checkpoint_id}`;
    this.written.set(key, { row, writes: this.early.get(early) ?? [], blobs: refs });
    this.early.delete(early);
  }

  /** Whether `mine` is still what the database holds: the newest checkpoint of its thread (when asked for the newest) with as many writes. */
  async stillNewest(mine: Written, newest: boolean): Promise<boolean> {
    const { thread_id, checkpoint_ns, checkpoint_id } = mine.row;
    const found = await this.db
      .selectFrom('agent_checkpoints as c')
      .select((eb) => [
        'c.checkpoint_id',
        eb
          .selectFrom('agent_checkpoint_writes as w')
          .select((w) => w.fn.countAll<number>().as('n'))
          .whereRef('w.thread_id', '=', 'c.thread_id')
          .whereRef('w.checkpoint_ns', '=', 'c.checkpoint_ns')
          .whereRef('w.checkpoint_id', '=', 'c.checkpoint_id')
          .as('writes'),
      ])
      .where('c.thread_id', '=', thread_id)
      .where('c.checkpoint_ns', '=', checkpoint_ns)
      .$if(!newest, (q) => q.where('c.checkpoint_id', '=', checkpoint_id))
      .orderBy('c.checkpoint_id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return (
      found !== undefined &&
      found.checkpoint_id === checkpoint_id &&
      Number(found.writes) === mine.writes.length
    );
  }
}
