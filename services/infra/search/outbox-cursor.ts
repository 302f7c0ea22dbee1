import type { Db } from '../db/port.js';

/** One outbox row as the indexer reads it. */
export interface OutboxRow {
  seq: number;
  kind: string;
  doc_id: string;
  op: string;
  doc: string | null;
  created_at: number;
}

/** Options of a per-process outbox reader. */
export interface OutboxCursorOptions {
  db: Pick<Db, 'kysely'>;
  /**
   * How long a transaction may take between enqueueing a change and committing it. A row numbered
   * below the cursor that appears within this window (a transaction that committed after a later one)
   * is still applied.
   */
  lateCommitMs?: number;
  /** How long rows stay in the outbox for other processes to read; older rows are deleted. */
  keepMs?: number;
  now?: () => number;
}

const COLUMNS = ['seq', 'kind', 'doc_id', 'op', 'doc', 'created_at'] as const;

/**
 * Reads `search_outbox` for a process whose index is its own (the embedded index lives in each
 * process's memory): every process on the database must see every change, so rows are read by a
 * cursor, not deleted when applied, and pruned once they are older than `keepMs`. Sequence numbers
 * are taken at insert and transactions commit in any order, so a row numbered below the cursor can
 * still appear; rows of the last `lateCommitMs` are checked against the set already applied.
 */
export class OutboxCursor {
  private readonly db: Pick<Db, 'kysely'>;
  private readonly lateCommitMs: number;
  private readonly keepMs: number;
  private readonly now: () => number;
  private cursor = 0;
  /** seq → created_at of the rows applied within the late-commit window. */
  private readonly applied = new Map<number, number>();
  private lastPrune = 0;

  constructor(opts: OutboxCursorOptions) {
    this.db = opts.db;
    this.lateCommitMs = opts.lateCommitMs ?? 60_000;
    this.keepMs = opts.keepMs ?? 3_600_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Marks every row committed so far as applied: call before loading the whole index from the
   * database, which then holds those changes. Later rows (and late commits) are read afterwards.
   */
  async skipCommitted(): Promise<void> {
    const since = this.now() - this.lateCommitMs;
    const rows = await this.db.kysely
      .selectFrom('search_outbox')
      .select(['seq', 'created_at'])
      .where((eb) => eb.or([eb('seq', '>', this.cursor), eb('created_at', '>=', since)]))
      .execute();
    for (const r of rows) {
      this.cursor = Math.max(this.cursor, Number(r.seq));
      if (Number(r.created_at) >= since) this.applied.set(Number(r.seq), Number(r.created_at));
    }
  }

  /** The next rows this process has not applied, in seq order: late commits first, then past the cursor. */
  async next(limit: number): Promise<OutboxRow[]> {
    const since = this.now() - this.lateCommitMs;
    for (const [seq, at] of this.applied) if (at < since) this.applied.delete(seq);
    const recent = await this.db.kysely
      .selectFrom('search_outbox')
      .select(['seq'])
      .where('seq', '<=', this.cursor)
      .where('created_at', '>=', since)
      .execute();
    const late = recent.map((r) => Number(r.seq)).filter((seq) => !this.applied.has(seq));
    const lateRows =
      late.length === 0
        ? []
        : await this.db.kysely
            .selectFrom('search_outbox')
            .select(COLUMNS)
            .where('seq', 'in', late.slice(0, limit))
            .orderBy('seq', 'asc')
            .execute();
    const rest = limit - lateRows.length;
    const newRows =
      rest <= 0
        ? []
        : await this.db.kysely
            .selectFrom('search_outbox')
            .select(COLUMNS)
            .where('seq', '>', this.cursor)
            .orderBy('seq', 'asc')
            .limit(rest)
            .execute();
    return [...lateRows, ...newRows].map((r) => ({
      ...r,
      seq: Number(r.seq),
      created_at: Number(r.created_at),
    }));
  }

  /** Records rows as applied (moving the cursor past them) and, at most once a minute, prunes old rows. */
  async markApplied(rows: OutboxRow[]): Promise<void> {
    const since = this.now() - this.lateCommitMs;
    for (const r of rows) {
      this.cursor = Math.max(this.cursor, r.seq);
      if (r.created_at >= since) this.applied.set(r.seq, r.created_at);
    }
    if (this.now() - this.lastPrune < 60_000) return;
    this.lastPrune = this.now();
    await this.db.kysely
      .deleteFrom('search_outbox')
      .where('created_at', '<', this.now() - this.keepMs)
      .execute();
  }
}
