import { page } from '../../core/paging.js';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { sql, type Selectable, type Transaction } from 'kysely';
import { PlatformError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { SearchDoc } from '../infra/search/port.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import { canonicalJson, sha256Hex } from '../approvals/canonical-json.js';
import type { AuditKeyring } from './audit-keys.js';
import { retry } from '../../core/retry.js';

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
  /** Id of the audit key `hash` is an HMAC under; null for entries written before key ids. */
  keyId: string | null;
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

/**
 * What `verify` reports: ok when no problem was found among `checked` entries, `checkpoints` signed
 * checkpoints and the `anchored` projects whose latest checkpoint was also found in the anchor file.
 */
export interface AuditVerifyResult {
  ok: boolean;
  checked: number;
  checkpoints: number;
  anchored: number;
  problems: AuditProblem[];
}

/** Options of `verify`. */
export interface AuditVerifyOptions {
  /** Trust the latest signed checkpoint and check only the entries from it to the head (fast). */
  sinceCheckpoint?: boolean;
}

/** Dependencies of the audit log. */
export interface AuditLogOptions {
  db: Db;
  log: Logger;
  now?: () => number;
  /**
   * The audit keys: entry hashes, the chain head and checkpoints become HMAC-SHA256 under the
   * current key (its id recorded beside them), so someone with write access to the database but not
   * the key cannot forge a consistent chain, head or checkpoint. Without it nothing is signed.
   */
  keyring?: AuditKeyring;
  /** Back-compat: a single key without an id (as `keyring.legacy`); entries carry no key id. */
  hmacKey?: string;
  /** A signed checkpoint is written after this many entries of a project (default 20). */
  checkpointEvery?: number;
  /** ... or when the last one is older than this (default 5 minutes). */
  checkpointIntervalMs?: number;
  /**
   * A file outside the database (0600) that keeps each project's latest signed checkpoint, so a
   * database rolled back to an earlier state (entries, head and checkpoints alike) is still caught.
   */
  anchorFile?: string;
}

type HeadRow = Selectable<Database['audit_heads']>;
type CheckpointRow = Selectable<Database['audit_checkpoints']>;

/** A signed checkpoint as kept in the anchor file. */
const anchorCheckpointSchema = z.object({
  seq: z.number().int().positive(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.number().int().nonnegative(),
  keyId: z.string().min(1).max(32),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});
const anchorFileSchema = z.object({
  version: z.literal(1),
  projects: z.record(z.string(), anchorCheckpointSchema),
});
type AnchorCheckpoint = z.infer<typeof anchorCheckpointSchema>;

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
 * HMAC of its canonical content, naming its key id, and the hash of the previous entry), appended
 * under a locked, signed per-project chain head so two platform instances never fork it. Signed
 * checkpoints (in the database, the log and the anchor file) make a truncated chain detectable.
 */
export class AuditLog {
  private readonly db: Db;
  private readonly log: Logger;
  private readonly now: () => number;

  private readonly legacyKey: string | undefined;
  private readonly keyring: AuditKeyring | undefined;
  private readonly checkpointEvery: number;
  private readonly checkpointIntervalMs: number;
  private readonly anchorFile: string | undefined;
  private anchorQueue: Promise<void> = Promise.resolve();

  constructor({
    db,
    log,
    now = Date.now,
    hmacKey,
    keyring,
    checkpointEvery = 20,
    checkpointIntervalMs = 5 * 60_000,
    anchorFile,
  }: AuditLogOptions) {
    this.db = db;
    this.log = log;
    this.now = now;
    this.keyring = keyring;
    this.legacyKey = keyring?.legacy ?? hmacKey;
    this.checkpointEvery = Math.max(1, Math.floor(checkpointEvery));
    this.checkpointIntervalMs = checkpointIntervalMs;
    this.anchorFile = anchorFile;
  }

  /**
   * Appends one entry. Pass `trx` to write it in the caller's transaction (it then commits or rolls
   * back with the caller's change); without it the entry gets its own transaction.
   */
  async append(input: AuditEntryInput, trx?: Transaction<Database>): Promise<AuditEntry> {
    validateInput(input);
    // in the caller's transaction the checkpoint is anchored later (by `checkpoint()`), once committed
    if (trx !== undefined) return (await this.appendIn(trx, input)).entry;
    return retry(
      async () => {
        const { entry, checkpointed } = await this.db.transaction((t) => this.appendIn(t, input));
        if (checkpointed) await this.anchor();
        return entry;
      },
      {
        retries: MAX_APPEND_TRIES - 1,
        shouldRetry: isRetryable,
        onRetry: (err, attempt) =>
          this.log.debug(
            { attempt, err: (err as Error).message },
            'audit append retried after a lock conflict',
          ),
      },
    );
  }

  private async appendIn(
    trx: Transaction<Database>,
    input: AuditEntryInput,
  ): Promise<{ entry: AuditEntry; checkpointed: boolean }> {
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
      keyId: this.keyring?.current.id ?? null,
    };
    const data = canonicalJson(entry.data);
    entry.data = JSON.parse(data) as Record<string, unknown>;
    entry.hash = entryHash(entry, this.keyring?.current.secret ?? this.legacyKey);
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
        key_id: entry.keyId,
      })
      .execute();
    const signed = this.sign('audit.head', {
      projectId: entry.projectId,
      seq: entry.seq,
      hash: entry.hash,
      at,
    });
    await trx
      .updateTable('audit_heads')
      .set({
        seq: entry.seq,
        hash: entry.hash,
        updated_at: at,
        key_id: signed?.keyId ?? null,
        mac: signed?.mac ?? null,
      })
      .where('project_id', '=', entry.projectId)
      .execute();
    await enqueueIndex(trx, { op: 'upsert', doc: auditSearchDoc(entry) });
    let checkpointed = false;
    if (this.keyring !== undefined) {
      if (!this.headSignatureOk(head))
        this.log.error(
          { projectId: entry.projectId, seq: Number(head.seq) },
          'audit chain head fails its signature (someone changed audit_heads); run visioninapp audit verify',
        );
      const last = await this.latestCheckpoint(trx, entry.projectId);
      if (last !== undefined && Number(last.seq) > Number(head.seq))
        this.log.error(
          { projectId: entry.projectId, headSeq: Number(head.seq), checkpointSeq: Number(last.seq) },
          'audit chain head is behind a signed checkpoint (entries were removed); run visioninapp audit verify',
        );
      if (
        last === undefined ||
        entry.seq - Number(last.seq) >= this.checkpointEvery ||
        at - Number(last.at) >= this.checkpointIntervalMs
      )
        checkpointed = await this.writeCheckpoint(trx, entry.projectId, entry.seq, entry.hash);
    }
    return { entry, checkpointed };
  }

  /**
   * Signs a checkpoint of every project whose head moved since its latest one (after checking the
   * head's signature and that its entry is there), then copies the latest checkpoints to the anchor
   * file. Run periodically and at shutdown, so the newest entries are covered too.
   */
  async checkpoint(): Promise<number> {
    if (this.keyring === undefined) return 0;
    let written = 0;
    const heads = await this.db.kysely.selectFrom('audit_heads').selectAll().execute();
    for (const head of heads) {
      const last = await this.latestCheckpoint(this.db.kysely, head.project_id);
      if (Number(head.seq) === 0 || (last !== undefined && Number(last.seq) >= Number(head.seq))) continue;
      const entry = await this.db.kysely
        .selectFrom('audit_log')
        .select('hash')
        .where('project_id', '=', head.project_id)
        .where('seq', '=', Number(head.seq))
        .executeTakeFirst();
      if (!this.headSignatureOk(head) || entry?.hash !== head.hash) {
        this.log.error(
          { projectId: head.project_id, seq: Number(head.seq) },
          'audit chain head is not signed or does not match its entry; no checkpoint written; run visioninapp audit verify',
        );
        continue;
      }
      if (await this.writeCheckpoint(this.db.kysely, head.project_id, Number(head.seq), head.hash)) written++;
    }
    await this.anchor();
    return written;
  }

  private async writeCheckpoint(
    db: Transaction<Database> | Db['kysely'],
    projectId: string,
    seq: number,
    hash: string,
  ): Promise<boolean> {
    const at = this.now();
    const signed = this.sign('audit.checkpoint', { projectId, seq, hash, at });
    if (signed === undefined) return false;
    const row = { project_id: projectId, seq, hash, at, key_id: signed.keyId, mac: signed.mac };
    // a checkpoint already at this seq is kept: a different one is evidence `verify` reports
    const result =
      this.db.dialect === 'mysql'
        ? await db.insertInto('audit_checkpoints').ignore().values(row).executeTakeFirst()
        : await db
            .insertInto('audit_checkpoints')
            .values(row)
            .onConflict((oc) => oc.columns(['project_id', 'seq']).doNothing())
            .executeTakeFirst();
    const inserted = Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
    // the log is a second copy outside the database (hash and signature are not secrets)
    if (inserted)
      this.log.info({ projectId, seq, hash, at, keyId: signed.keyId, mac: signed.mac }, 'audit checkpoint');
    return inserted;
  }

  private latestCheckpoint(
    db: Transaction<Database> | Db['kysely'],
    projectId: string,
  ): Promise<CheckpointRow | undefined> {
    return db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  /** Raises each project's checkpoint in the anchor file to the latest validly signed one in the database (never lowers it). */
  private anchor(): Promise<void> {
    const file = this.anchorFile;
    if (file === undefined || this.keyring === undefined) return Promise.resolve();
    const run = async () => {
      const anchors = readAnchorFile(file);
      if (anchors === 'unreadable') {
        this.log.error(
          { file },
          'audit anchor file is unreadable; not overwritten; run visioninapp audit verify',
        );
        return;
      }
      let changed = false;
      const heads = await this.db.kysely.selectFrom('audit_heads').select('project_id').execute();
      for (const { project_id: projectId } of heads) {
        const cp = await this.latestCheckpoint(this.db.kysely, projectId);
        const known = anchors[projectId];
        if (cp === undefined || !this.checkpointSignatureOk(cp)) continue;
        if (known !== undefined && known.seq > Number(cp.seq)) {
          this.log.error(
            { projectId, anchoredSeq: known.seq, checkpointSeq: Number(cp.seq) },
            'audit checkpoints in the database are behind the anchor file (rolled back); run visioninapp audit verify',
          );
          continue;
        }
        if (known?.seq === Number(cp.seq)) continue;
        anchors[projectId] = {
          seq: Number(cp.seq),
          hash: cp.hash,
          at: Number(cp.at),
          keyId: cp.key_id,
          mac: cp.mac,
        };
        changed = true;
      }
      if (!changed) return;
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ version: 1, projects: anchors }, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, file);
    };
    // one writer at a time in this process; a failed anchor never fails the append that triggered it
    this.anchorQueue = this.anchorQueue.then(run).catch((err: Error) => {
      this.log.error({ err: err.message }, 'audit anchor file not written');
    });
    return this.anchorQueue;
  }

  private sign(
    type: 'audit.head' | 'audit.checkpoint',
    c: { projectId: string; seq: number; hash: string; at: number },
  ): { keyId: string; mac: string } | undefined {
    const key = this.keyring?.current;
    if (key === undefined) return undefined;
    return { keyId: key.id, mac: macOf(key.secret, type, { ...c, keyId: key.id }) };
  }

  private signatureOk(
    type: 'audit.head' | 'audit.checkpoint',
    c: { projectId: string; seq: number; hash: string; at: number; keyId: string; mac: string },
  ): boolean {
    const secret = this.keyring?.keys.get(c.keyId);
    return secret !== undefined && macOf(secret, type, c) === c.mac;
  }

  /** A head from before signed heads (no key id) passes until the project has a checkpoint; `verify` checks that. */
  private headSignatureOk(head: HeadRow): boolean {
    if (head.key_id === null || head.mac === null) return head.key_id === null && head.mac === null;
    return this.signatureOk('audit.head', {
      projectId: head.project_id,
      seq: Number(head.seq),
      hash: head.hash,
      at: Number(head.updated_at),
      keyId: head.key_id,
      mac: head.mac,
    });
  }

  private checkpointSignatureOk(cp: CheckpointRow | (AnchorCheckpoint & { project_id: string })): boolean {
    return this.signatureOk('audit.checkpoint', {
      projectId: cp.project_id,
      seq: Number(cp.seq),
      hash: cp.hash,
      at: Number(cp.at),
      keyId: 'key_id' in cp ? cp.key_id : cp.keyId,
      mac: cp.mac,
    });
  }

  /** Entries matching every given filter, oldest first unless `order: 'desc'`, with the total count. */
  async query(q: AuditQuery): Promise<{ total: number; entries: AuditEntry[] }> {
    const { limit, offset } = page(q, { default: 100, max: 1000 });
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
   * entry, a chain head or checkpoint whose signature fails, a head behind a signed checkpoint and a
   * chain shorter than the checkpoint kept in the anchor file (the newest entries removed). With
   * `sinceCheckpoint`, only the entries from the latest signed checkpoint on are recomputed.
   */
  async verify(projectId?: string, opts: AuditVerifyOptions = {}): Promise<AuditVerifyResult> {
    const anchors = this.anchorFile === undefined ? {} : readAnchorFile(this.anchorFile);
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
              ...(anchors === 'unreadable' ? [] : Object.keys(anchors)),
            ]),
          ].sort();
    const result: AuditVerifyResult = { ok: true, checked: 0, checkpoints: 0, anchored: 0, problems: [] };
    if (anchors === 'unreadable')
      result.problems.push({
        projectId: projectId ?? '*',
        seq: 0,
        kind: 'edited',
        detail: `the anchor file ${this.anchorFile ?? ''} is unreadable: it was changed outside the platform; restore it from a backup`,
      });
    for (const project of projects)
      await this.verifyProject(
        project,
        result,
        opts,
        anchors === 'unreadable' ? undefined : anchors[project],
      );
    result.ok = result.problems.length === 0;
    return result;
  }

  private async verifyProject(
    projectId: string,
    result: AuditVerifyResult,
    opts: AuditVerifyOptions,
    anchor: AnchorCheckpoint | undefined,
  ): Promise<void> {
    const problem = (seq: number, kind: AuditProblem['kind'], detail: string) =>
      result.problems.push({ projectId, seq, kind, detail });
    const checkpoints: CheckpointRow[] = [];
    for (const cp of await this.db.kysely
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('seq', 'asc')
      .execute()) {
      if (this.checkpointSignatureOk(cp)) checkpoints.push(cp);
      else
        problem(
          Number(cp.seq),
          'edited',
          this.keyring?.keys.has(cp.key_id) === false
            ? `the checkpoint at entry ${Number(cp.seq)} is signed with audit key ${cp.key_id}, which is not configured: add the retired key to AUDIT_KEYS`
            : `the checkpoint at entry ${Number(cp.seq)} fails its signature: it was written or changed outside the audit log`,
        );
    }
    const latest = checkpoints.at(-1);
    const start = opts.sinceCheckpoint === true && latest !== undefined ? Number(latest.seq) : 1;
    const pending = new Map(
      checkpoints.filter((cp) => Number(cp.seq) >= start).map((cp) => [Number(cp.seq), cp]),
    );
    result.checkpoints += pending.size;

    let expected = start;
    // from a checkpoint, its entry's own link is trusted (the checkpoint signs its hash)
    let prevHash: string | undefined = start === 1 ? GENESIS_HASH : undefined;
    let last: AuditRow | undefined;
    for (;;) {
      const rows = await this.db.kysely
        .selectFrom('audit_log')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('seq', last === undefined ? '>=' : '>', last === undefined ? start : Number(last.seq))
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
        const cp = pending.get(seq);
        if (cp !== undefined) {
          pending.delete(seq);
          if (cp.hash !== row.hash)
            problem(
              seq,
              'edited',
              `entry ${seq} (${row.action}) differs from the signed checkpoint of it: it was replaced`,
            );
        }
        const key = this.keyFor(row);
        if (key === 'unknown') {
          problem(
            seq,
            'edited',
            `entry ${seq} (${row.action}) is signed with audit key ${row.key_id ?? ''}, which is not configured: add the retired key to AUDIT_KEYS`,
          );
        } else if (rowHash(row, key) !== row.hash) {
          problem(
            seq,
            'edited',
            `entry ${seq} (${row.action}) no longer matches its hash: its content was changed`,
          );
        } else if (prevHash !== undefined && row.prev_hash !== prevHash) {
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
    const lastSeq = last === undefined ? 0 : Number(last.seq);
    for (const cp of pending.values())
      problem(
        Number(cp.seq),
        'missing',
        `entry ${Number(cp.seq)} is gone although a signed checkpoint of ${new Date(Number(cp.at)).toISOString()} recorded it: entries were removed (the chain ends at ${lastSeq})`,
      );
    if (anchor !== undefined) {
      if (!this.checkpointSignatureOk({ ...anchor, project_id: projectId })) {
        problem(
          anchor.seq,
          'edited',
          `the checkpoint of this project in the anchor file fails its signature: the file was changed`,
        );
      } else {
        result.anchored++;
        const anchored = await this.db.kysely
          .selectFrom('audit_log')
          .select('hash')
          .where('project_id', '=', projectId)
          .where('seq', '=', anchor.seq)
          .executeTakeFirst();
        if (anchored === undefined)
          problem(
            anchor.seq,
            'missing',
            `entry ${anchor.seq} is gone although the anchor file recorded it signed at ${new Date(anchor.at).toISOString()}: the newest entries were removed or the database was rolled back (the chain ends at ${lastSeq})`,
          );
        else if (anchored.hash !== anchor.hash)
          problem(
            anchor.seq,
            'edited',
            `entry ${anchor.seq} differs from the one the anchor file recorded: it was replaced`,
          );
      }
    }
    const head = await this.db.kysely
      .selectFrom('audit_heads')
      .selectAll()
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    if (head === undefined) {
      if (last !== undefined) problem(0, 'missing', 'the chain head of this project is missing');
      return;
    }
    const headSeq = Number(head.seq);
    if (this.keyring !== undefined || head.key_id !== null) {
      if (head.key_id === null && checkpoints.length > 0)
        problem(
          headSeq,
          'edited',
          'the chain head is not signed although the chain has signed checkpoints: audit_heads was changed',
        );
      else if (!this.headSignatureOk(head))
        problem(
          headSeq,
          'edited',
          head.key_id !== null && this.keyring?.keys.has(head.key_id) !== true
            ? `the chain head is signed with audit key ${head.key_id}, which is not configured: add the retired key to AUDIT_KEYS`
            : 'the chain head fails its signature: audit_heads was changed outside the audit log',
        );
    }
    const newestCheckpoint = Math.max(Number(latest?.seq ?? 0), anchor?.seq ?? 0);
    if (headSeq < newestCheckpoint)
      problem(
        headSeq + 1,
        'missing',
        `the chain head (entry ${headSeq}) is behind a signed checkpoint at entry ${newestCheckpoint}: the head was rewound and newer entries removed`,
      );
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

  /** The secret an entry's hash is an HMAC under (undefined: plain sha256), or 'unknown' for a key id not configured. */
  private keyFor(row: AuditRow): string | undefined | 'unknown' {
    if (row.key_id === null) return this.legacyKey;
    return this.keyring?.keys.get(row.key_id) ?? 'unknown';
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

/**
 * The hash an entry carries: sha256 (or HMAC-SHA256 under `hmacKey`) of the canonical JSON of
 * everything but its position and own hash; the key id is part of it when there is one (entries
 * from before key ids hash exactly as they did).
 */
export function entryHash(
  entry: Omit<AuditEntry, 'hash' | 'seq' | 'keyId'> & { keyId?: string | null },
  hmacKey?: string,
): string {
  const content = canonicalJson({
    ...(entry.keyId === undefined || entry.keyId === null ? {} : { keyId: entry.keyId }),
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

/** The HMAC of a signed head or checkpoint: `type` keeps one from being passed off as the other. */
function macOf(
  secret: string,
  type: 'audit.head' | 'audit.checkpoint',
  c: { projectId: string; seq: number; hash: string; at: number; keyId: string },
): string {
  const content = canonicalJson({
    type,
    projectId: c.projectId,
    seq: c.seq,
    hash: c.hash,
    at: c.at,
    keyId: c.keyId,
  });
  return createHmac('sha256', secret).update(content, 'utf8').digest('hex');
}

/** The anchor file's checkpoints by project ({} when there is no file yet). */
function readAnchorFile(file: string): Record<string, AnchorCheckpoint> | 'unreadable' {
  if (!existsSync(file)) return {};
  try {
    return anchorFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).projects;
  } catch {
    return 'unreadable';
  }
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
