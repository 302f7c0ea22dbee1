import { sql, type Insertable, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { DbDialect } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import { GENESIS_HASH, type AuditActor, type AuditEntry, type AuditQuery } from './model.js';

/** An audit entry row. */
export type AuditRow = Selectable<Database['audit_log']>;
/** A project's chain head row. */
export type HeadRow = Selectable<Database['audit_heads']>;
/** A signed checkpoint row. */
export type CheckpointRow = Selectable<Database['audit_checkpoints']>;

/** Rows read per page when walking a chain or reindexing. */
export const PAGE = 1000;

/** Filters of `AuditRepository.query`, with the page already clamped. */
export type AuditRowQuery = Omit<AuditQuery, 'limit' | 'offset'> & { limit: number; offset: number };

/** The audit domain's SQL, on a database or an open transaction. */
export class AuditRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DbDialect,
  ) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): AuditRepository {
    return new AuditRepository(trx, this.dialect);
  }

  /**
   * The project's chain head, created at the genesis hash if missing, locked for this transaction.
   * The upsert takes the head row's write lock first (InnoDB X lock / SQLite write transaction),
   * so concurrent appenders of one project queue here instead of reading the same head.
   */
  async lockHead(projectId: string, at: number): Promise<HeadRow> {
    const seed = { project_id: projectId, seq: 0, hash: GENESIS_HASH, updated_at: at };
    if (this.dialect === 'mysql') {
      await this.db
        .insertInto('audit_heads')
        .values(seed)
        .onDuplicateKeyUpdate({ seq: sql<number>`seq` })
        .execute();
    } else {
      await this.db
        .insertInto('audit_heads')
        .values(seed)
        .onConflict((oc) => oc.column('project_id').doUpdateSet({ seq: sql<number>`seq` }))
        .execute();
    }
    return this.db
      .selectFrom('audit_heads')
      .selectAll()
      .where('project_id', '=', projectId)
      .$if(this.dialect === 'mysql', (q) => q.forUpdate())
      .executeTakeFirstOrThrow();
  }

  async insertEntry(row: Insertable<Database['audit_log']>): Promise<void> {
    await this.db.insertInto('audit_log').values(row).execute();
  }

  async updateHead(projectId: string, set: Updateable<Database['audit_heads']>): Promise<void> {
    await this.db.updateTable('audit_heads').set(set).where('project_id', '=', projectId).execute();
  }

  findHead(projectId: string): Promise<HeadRow | undefined> {
    return this.db
      .selectFrom('audit_heads')
      .selectAll()
      .where('project_id', '=', projectId)
      .executeTakeFirst();
  }

  listHeads(): Promise<HeadRow[]> {
    return this.db.selectFrom('audit_heads').selectAll().execute();
  }

  async headProjectIds(): Promise<string[]> {
    return (await this.db.selectFrom('audit_heads').select('project_id').execute()).map((r) => r.project_id);
  }

  async entryProjectIds(): Promise<string[]> {
    return (await this.db.selectFrom('audit_log').select('project_id').distinct().execute()).map(
      (r) => r.project_id,
    );
  }

  /** The hash of the entry at `seq`, if there is one. */
  async hashAt(projectId: string, seq: number): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('audit_log')
      .select('hash')
      .where('project_id', '=', projectId)
      .where('seq', '=', seq)
      .executeTakeFirst();
    return row?.hash;
  }

  findByHash(projectId: string, hash: string): Promise<{ seq: number } | undefined> {
    return this.db
      .selectFrom('audit_log')
      .select('seq')
      .where('project_id', '=', projectId)
      .where('hash', '=', hash)
      .executeTakeFirst();
  }

  /** A page of a project's entries in chain order, from `seq` (inclusive with '>=', exclusive with '>'). */
  entriesFrom(projectId: string, op: '>=' | '>', seq: number): Promise<AuditRow[]> {
    return this.db
      .selectFrom('audit_log')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('seq', op, seq)
      .orderBy('seq', 'asc')
      .limit(PAGE)
      .execute();
  }

  /** A page of all entries by row id, after `lastId`. */
  entriesAfterId(lastId: number): Promise<AuditRow[]> {
    return this.db
      .selectFrom('audit_log')
      .selectAll()
      .where('id', '>', lastId)
      .orderBy('id', 'asc')
      .limit(PAGE)
      .execute();
  }

  /** Entries matching every given filter, with the total count. */
  async query(q: AuditRowQuery): Promise<{ total: number; rows: AuditRow[] }> {
    let base = this.db.selectFrom('audit_log').where('project_id', '=', q.projectId);
    if (q.threadId !== undefined) base = base.where('thread_id', '=', q.threadId);
    if (q.userId !== undefined) base = base.where('actor_id', '=', q.userId);
    if (q.tool !== undefined) base = base.where('tool', '=', q.tool);
    if (q.action !== undefined) base = base.where('action', '=', q.action);
    if (q.from !== undefined) base = base.where('at', '>=', q.from);
    if (q.to !== undefined) base = base.where('at', '<', q.to);
    const [count, rows] = await Promise.all([
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      base
        .selectAll()
        .orderBy('seq', q.order ?? 'asc')
        .limit(q.limit)
        .offset(q.offset)
        .execute(),
    ]);
    return { total: Number(count.n), rows };
  }

  latestCheckpoint(projectId: string): Promise<CheckpointRow | undefined> {
    return this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  listCheckpoints(projectId: string): Promise<CheckpointRow[]> {
    return this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('seq', 'asc')
      .execute();
  }

  /** Inserts a checkpoint unless one is already at its seq (that one is kept); whether it was inserted. */
  async insertCheckpoint(row: Insertable<Database['audit_checkpoints']>): Promise<boolean> {
    const result =
      this.dialect === 'mysql'
        ? await this.db.insertInto('audit_checkpoints').ignore().values(row).executeTakeFirst()
        : await this.db
            .insertInto('audit_checkpoints')
            .values(row)
            .onConflict((oc) => oc.columns(['project_id', 'seq']).doNothing())
            .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  }
}

/** An entry as stored, back as the domain type. */
export function rowToEntry(row: AuditRow): AuditEntry {
  return {
    projectId: row.project_id,
    seq: Number(row.seq),
    at: Number(row.at),
    actor: { id: row.actor_id, kind: row.actor_kind as AuditActor['kind'] },
    action: row.action,
    threadId: row.thread_id,
    tool: row.tool,
    approvalId: row.approval_id,
    data: parseData(row.data),
    prevHash: row.prev_hash,
    hash: row.hash,
    keyId: row.key_id,
  };
}

function parseData(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { value };
  } catch {
    return { unreadable: text };
  }
}
