import { createHmac } from 'node:crypto';
import { sql, type Selectable, type Transaction } from 'kysely';
import { PlatformError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { SearchDoc } from '../infra/search/port.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import { canonicalJson, sha256Hex } from '../approvals/canonical-json.js';

/** The `prev_hash` of the first entry of every project's chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** Who did something: a person, an API token or the platform itself. */
export interface AuditActor {
  id: string;
  kind: 'user' | 'token' | 'system';
}

/** What a caller appends. `action` is `<noun>.<verb>`, e.g. step.proposed, approval.decided, tool.failed. */
export interface AuditEntryInput {
  projectId: string;
  actor: AuditActor;
  action: string;
  threadId?: string;
  tool?: string;
  approvalId?: string;
  data?: Record<string, unknown>;
}

/** One stored entry of a project's chain. */
export interface AuditEntry {
  projectId: string;
  seq: number;
  at: number;
  actor: AuditActor;
  action: string;
  threadId: string | null;
  tool: string | null;
  approvalId: string | null;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** Filters of `AuditLog.query`; every given filter must match. */
export interface AuditQuery {
  projectId: string;
  threadId?: string;
  userId?: string;
  tool?: string;
  action?: string;
  /** Epoch ms, inclusive. */
  from?: number;
  /** Epoch ms, exclusive. */
  to?: number;
  offset?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

/** One thing `verify` found wrong with a chain. */
export interface AuditProblem {
  projectId: string;
  seq: number;
  kind: 'edited' | 'missing' | 'reordered';
  detail: string;
}

/** What `verify` reports: ok when no problem was found among `checked` entries. */
export interface AuditVerifyResult {
  ok: boolean;
  checked: number;
  problems: AuditProblem[];
}

/** Dependencies of the audit log. */
export interface AuditLogOptions {
  db: Db;
  log: Logger;
  now?: () => number;
  /**
   * Optional secret (e.g. SIGNING_SECRET): entry hashes become HMAC-SHA256 under it, so someone
   * with write access to the database but not the secret cannot forge a consistent chain.
   */
  hmacKey?: string;
}

type AuditRow = Selectable<Database['audit_log']>;

const SECRET_KEYS = new Set([
  'password',
  'passwd',
  'secret',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'apikey',
  'authorization',
  'cookie',
  'signingsecret',
  'clientsecret',
  'privatekey',
  'credentials',
]);
const ACTION_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const PAGE = 1000;
const MAX_APPEND_TRIES = 5;

/**
 * The append-only audit log: each project's entries form a hash chain (every entry carries the
 * sha256 of its canonical content and the hash of the previous entry), appended under a locked
 * per-project chain head so two platform instances never fork it.
 */
export class AuditLog {
  private readonly db: Db;
  private readonly log: Logger;
  private readonly now: () => number;

  private readonly hmacKey: string | undefined;

  constructor({ db, log, now = Date.now, hmacKey }: AuditLogOptions) {
    this.db = db;
    this.log = log;
    this.now = now;
    this.hmacKey = hmacKey;
  }

  /**
   * Appends one entry. Pass `trx` to write it in the caller's transaction (it then commits or rolls
   * back with the caller's change); without it the entry gets its own transaction.
   */
  async append(input: AuditEntryInput, trx?: Transaction<Database>): Promise<AuditEntry> {
    validateInput(input);
    if (trx !== undefined) return this.appendIn(trx, input);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction((t) => this.appendIn(t, input));
      } catch (err) {
        if (attempt >= MAX_APPEND_TRIES || !isRetryable(err)) throw err;
        this.log.debug(
          { attempt, err: (err as Error).message },
          'audit append retried after a lock conflict',
        );
      }
    }
  }

  private async appendIn(trx: Transaction<Database>, input: AuditEntryInput): Promise<AuditEntry> {
    const at = this.now();
    // The upsert takes the head row's write lock first (InnoDB X lock / SQLite write transaction),
    // so concurrent appenders of one project queue here instead of reading the same head.
    const seed = { project_id: input.projectId, seq: 0, hash: GENESIS_HASH, updated_at: at };
    if (this.db.dialect === 'mysql') {
      await trx
        .insertInto('audit_heads')
        .values(seed)
        .onDuplicateKeyUpdate({ seq: sql<number>`seq` })
        .execute();
    } else {
      await trx
        .insertInto('audit_heads')
        .values(seed)
        .onConflict((oc) => oc.column('project_id').doUpdateSet({ seq: sql<number>`seq` }))
        .execute();
    }
    const head = await trx
      .selectFrom('audit_heads')
      .selectAll()
      .where('project_id', '=', input.projectId)
      .$if(this.db.dialect === 'mysql', (q) => q.forUpdate())
      .executeTakeFirstOrThrow();
    const entry: AuditEntry = {
      projectId: input.projectId,
      seq: Number(head.seq) + 1,
      at,
      actor: { id: input.actor.id, kind: input.actor.kind },
      action: input.action,
      threadId: input.threadId ?? null,
      tool: input.tool ?? null,
      approvalId: input.approvalId ?? null,
      data: redactSecrets(input.data ?? {}) as Record<string, unknown>,
      prevHash: head.hash,
      hash: '',
    };
    const data = canonicalJson(entry.data);
    entry.data = JSON.parse(data) as Record<string, unknown>;
    entry.hash = entryHash(entry, this.hmacKey);
    await trx
      .insertInto('audit_log')
      .values({
        project_id: entry.projectId,
        seq: entry.seq,
        at: entry.at,
        actor_id: entry.actor.id,
        actor_kind: entry.actor.kind,
        action: entry.action,
        thread_id: entry.threadId,
        tool: entry.tool,
        approval_id: entry.approvalId,
        data,
        prev_hash: entry.prevHash,
        hash: entry.hash,
      })
      .execute();
    await trx
      .updateTable('audit_heads')
      .set({ seq: entry.seq, hash: entry.hash, updated_at: at })
      .where('project_id', '=', entry.projectId)
      .execute();
    await enqueueIndex(trx, { op: 'upsert', doc: auditSearchDoc(entry) });
    return entry;
  }

  /** Entries matching every given filter, oldest first unless `order: 'desc'`, with the total count. */
  async query(q: AuditQuery): Promise<{ total: number; entries: AuditEntry[] }> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const offset = Math.max(q.offset ?? 0, 0);
    let base = this.db.kysely.selectFrom('audit_log').where('project_id', '=', q.projectId);
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
        .limit(limit)
        .offset(offset)
        .execute(),
    ]);
    return { total: Number(count.n), entries: rows.map(rowToEntry) };
  }

  /**
   * Recomputes every chain (one project, or all) and reports each edited, missing or reordered
   * entry. Only an attacker who rewrites every later entry and the chain head escapes it; the
   * head and the newest hash can be copied elsewhere to catch that too.
   */
  async verify(projectId?: string): Promise<AuditVerifyResult> {
    const projects =
      projectId !== undefined
        ? [projectId]
        : [
            ...new Set([
              ...(await this.db.kysely.selectFrom('audit_heads').select('project_id').execute()).map(
                (r) => r.project_id,
              ),
              ...(await this.db.kysely.selectFrom('audit_log').select('project_id').distinct().execute()).map(
                (r) => r.project_id,
              ),
            ]),
          ].sort();
    const result: AuditVerifyResult = { ok: true, checked: 0, problems: [] };
    for (const project of projects) await this.verifyProject(project, result);
    result.ok = result.problems.length === 0;
    return result;
  }

  private async verifyProject(projectId: string, result: AuditVerifyResult): Promise<void> {
    const problem = (seq: number, kind: AuditProblem['kind'], detail: string) =>
      result.problems.push({ projectId, seq, kind, detail });
    let expected = 1;
    let prevHash = GENESIS_HASH;
    let last: AuditRow | undefined;
    for (;;) {
      const rows = await this.db.kysely
        .selectFrom('audit_log')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('seq', '>', last === undefined ? 0 : Number(last.seq))
        .orderBy('seq', 'asc')
        .limit(PAGE)
        .execute();
      for (const row of rows) {
        const seq = Number(row.seq);
        result.checked++;
        const gap = seq > expected;
        if (gap)
          problem(
            expected,
            'missing',
            `entries ${rangeText(expected, seq - 1)} are missing: entry ${seq} follows entry ${expected - 1}`,
          );
        if (rowHash(row, this.hmacKey) !== row.hash) {
          problem(
            seq,
            'edited',
            `entry ${seq} (${row.action}) no longer matches its hash: its content was changed`,
          );
        } else if (row.prev_hash !== prevHash) {
          const pred =
            row.prev_hash === GENESIS_HASH ? { seq: 0 } : await this.findByHash(projectId, row.prev_hash);
          if (pred !== undefined) {
            const after =
              Number(pred.seq) === 0 ? 'the start of the chain' : `entry now at ${Number(pred.seq)}`;
            problem(
              seq,
              'reordered',
              `entry ${seq} (${row.action}) was written after ${after}, not after entry ${expected - 1}`,
            );
          } else if (gap) {
            // its predecessor is among the missing entries reported above
          } else if (seq === 1) {
            problem(
              1,
              'missing',
              'the entries before the first one are missing: it follows an entry that is gone',
            );
          } else {
            problem(seq - 1, 'edited', `entry ${seq - 1} was replaced after entry ${seq} recorded its hash`);
          }
        }
        prevHash = row.hash;
        expected = seq + 1;
        last = row;
      }
      if (rows.length < PAGE) break;
    }
    const head = await this.db.kysely
      .selectFrom('audit_heads')
      .selectAll()
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    const lastSeq = last === undefined ? 0 : Number(last.seq);
    if (head === undefined) {
      if (last !== undefined) problem(0, 'missing', 'the chain head of this project is missing');
      return;
    }
    const headSeq = Number(head.seq);
    if (headSeq > lastSeq)
      problem(
        lastSeq + 1,
        'missing',
        `entries ${rangeText(lastSeq + 1, headSeq)} are missing: the chain head says ${headSeq} were written`,
      );
    else if (headSeq < lastSeq)
      problem(headSeq + 1, 'edited', `entries after ${headSeq} were not written through the audit log`);
    else if (last !== undefined && head.hash !== last.hash) {
      const newest = await this.findByHash(projectId, head.hash);
      if (newest !== undefined)
        problem(lastSeq, 'reordered', `the newest entry was moved from ${lastSeq} to ${Number(newest.seq)}`);
      else problem(lastSeq, 'edited', `entry ${lastSeq} was replaced after it was written`);
    }
  }

  private findByHash(projectId: string, hash: string): Promise<{ seq: number } | undefined> {
    return this.db.kysely
      .selectFrom('audit_log')
      .select('seq')
      .where('project_id', '=', projectId)
      .where('hash', '=', hash)
      .executeTakeFirst();
  }
}

/** Every audit entry as a search document, for a full reindex. */
export async function* auditSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  let lastId = 0;
  for (;;) {
    const rows = await db.kysely
      .selectFrom('audit_log')
      .selectAll()
      .where('id', '>', lastId)
      .orderBy('id', 'asc')
      .limit(PAGE)
      .execute();
    for (const row of rows) yield auditSearchDoc(rowToEntry(row));
    const tail = rows.at(-1);
    if (tail === undefined || rows.length < PAGE) return;
    lastId = Number(tail.id);
  }
}

/** The search document of one entry (kind `audit`, id `<projectId>:<seq>`). */
export function auditSearchDoc(entry: AuditEntry): SearchDoc {
  const fields: Record<string, string | number | boolean> = {
    action: entry.action,
    actorId: entry.actor.id,
    seq: entry.seq,
  };
  if (entry.tool !== null) fields.tool = entry.tool;
  if (entry.threadId !== null) fields.threadId = entry.threadId;
  if (entry.approvalId !== null) fields.approvalId = entry.approvalId;
  const data = canonicalJson(entry.data);
  return {
    kind: 'audit',
    id: `${entry.projectId}:${entry.seq}`,
    projectId: entry.projectId,
    title: `${entry.action}${entry.tool === null ? '' : ` ${entry.tool}`} by ${entry.actor.id}`,
    text: [
      entry.action,
      entry.tool ?? '',
      entry.threadId ?? '',
      data.length > 2000 ? data.slice(0, 2000) : data,
    ]
      .filter(Boolean)
      .join(' '),
    tags: [entry.action],
    fields,
    updatedAt: entry.at,
  };
}

/** The hash an entry carries: sha256 (or HMAC-SHA256 under `hmacKey`) of the canonical JSON of everything but its position and own hash. */
export function entryHash(entry: Omit<AuditEntry, 'hash' | 'seq'>, hmacKey?: string): string {
  const content = canonicalJson({
    projectId: entry.projectId,
    at: entry.at,
    actor: { id: entry.actor.id, kind: entry.actor.kind },
    action: entry.action,
    threadId: entry.threadId,
    tool: entry.tool,
    approvalId: entry.approvalId,
    data: entry.data,
    prevHash: entry.prevHash,
  });
  return hmacKey === undefined
    ? sha256Hex(content)
    : createHmac('sha256', hmacKey).update(content, 'utf8').digest('hex');
}

function rowHash(row: AuditRow, hmacKey: string | undefined): string {
  try {
    return entryHash(rowToEntry(row), hmacKey);
  } catch {
    return '';
  }
}

function rowToEntry(row: AuditRow): AuditEntry {
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

function validateInput(input: AuditEntryInput): void {
  if (!input.projectId) throw new PlatformError('invalid_input', 'audit entry needs a projectId');
  if (!input.actor?.id) throw new PlatformError('invalid_input', 'audit entry needs an actor id');
  if (!['user', 'token', 'system'].includes(input.actor.kind)) {
    throw new PlatformError(
      'invalid_input',
      `audit actor kind "${String(input.actor.kind)}" is not one of user, token, system`,
    );
  }
  if (!ACTION_RE.test(input.action) || input.action.length > 64) {
    throw new PlatformError(
      'invalid_input',
      `audit action "${input.action}" must look like "noun.verb" (lower case, at most 64 characters)`,
    );
  }
  if (
    input.data !== undefined &&
    (input.data === null || typeof input.data !== 'object' || Array.isArray(input.data))
  ) {
    throw new PlatformError('invalid_input', 'audit data must be a JSON object');
  }
}

/** Replaces the value of any key that names a secret with "[redacted]", at any depth. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] =
      SECRET_KEYS.has(k.toLowerCase().replace(/[-_]/g, '')) && v !== undefined && v !== null
        ? '[redacted]'
        : redactSecrets(v);
  }
  return out;
}

function rangeText(a: number, b: number): string {
  return a === b ? String(a) : `${a}..${b}`;
}

function isRetryable(err: unknown): boolean {
  const e = err as { errno?: number; code?: string };
  return e.errno === 1213 || e.errno === 1205 || e.code === 'SQLITE_BUSY';
}
