import { page } from '../../core/paging.js';
import type { Transaction } from 'kysely';
import { PlatformError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { retry } from '../../core/retry.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import { canonicalJson } from '../approvals/canonical-json.js';
import type { AuditKeyring } from './audit-keys.js';
import { AuditCheckpoints } from './audit.checkpoints.js';
import { AuditRepository, rowToEntry } from './audit.repository.js';
import { auditSearchDoc } from './audit.search.js';
import { AuditSigner, entryHash } from './audit.signing.js';
import { AuditVerifier } from './audit.verify.js';
import type {
  AuditEntry,
  AuditEntryInput,
  AuditQuery,
  AuditVerifyOptions,
  AuditVerifyResult,
} from './model.js';

export { auditSearchDoc, auditSearchDocs } from './audit.search.js';
export { entryHash } from './audit.signing.js';
export { GENESIS_HASH } from './model.js';
export type {
  AuditActor,
  AuditEntry,
  AuditEntryInput,
  AuditProblem,
  AuditQuery,
  AuditVerifyOptions,
  AuditVerifyResult,
} from './model.js';

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
const MAX_APPEND_TRIES = 5;

/**
 * The append-only audit log: each project's entries form a hash chain (every entry carries the
 * HMAC of its canonical content, naming its key id, and the hash of the previous entry), appended
 * under a locked, signed per-project chain head so two platform instances never fork it. Signed
 * checkpoints (in the database, the log and the anchor file) make a truncated chain detectable.
 * SQL is `AuditRepository`, keys `AuditSigner`, checkpoints and the anchor file `AuditCheckpoints`,
 * `verify` `AuditVerifier`.
 */
export class AuditLog {
  private readonly db: Db;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly repo: AuditRepository;
  private readonly signer: AuditSigner;
  private readonly checkpoints: AuditCheckpoints;
  private readonly verifier: AuditVerifier;

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
    this.repo = new AuditRepository(db.kysely, db.dialect);
    this.signer = new AuditSigner(keyring, keyring?.legacy ?? hmacKey);
    this.checkpoints = new AuditCheckpoints({
      repo: this.repo,
      log,
      now,
      signer: this.signer,
      checkpointEvery: Math.max(1, Math.floor(checkpointEvery)),
      checkpointIntervalMs,
      anchorFile,
    });
    this.verifier = new AuditVerifier(this.repo, this.signer, anchorFile);
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
        if (checkpointed) await this.checkpoints.anchor();
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
    const repo = this.repo.in(trx);
    const head = await repo.lockHead(input.projectId, at);
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
      keyId: this.signer.keyring?.current.id ?? null,
    };
    const data = canonicalJson(entry.data);
    entry.data = JSON.parse(data) as Record<string, unknown>;
    entry.hash = entryHash(entry, this.signer.entryKey);
    await repo.insertEntry({
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
    });
    const signed = this.signer.sign('audit.head', {
      projectId: entry.projectId,
      seq: entry.seq,
      hash: entry.hash,
      at,
    });
    await repo.updateHead(entry.projectId, {
      seq: entry.seq,
      hash: entry.hash,
      updated_at: at,
      key_id: signed?.keyId ?? null,
      mac: signed?.mac ?? null,
    });
    await enqueueIndex(trx, { op: 'upsert', doc: auditSearchDoc(entry) });
    const checkpointed = await this.checkpoints.afterAppend(repo, head, entry);
    return { entry, checkpointed };
  }

  /**
   * Signs a checkpoint of every project whose head moved since its latest one (after checking the
   * head's signature and that its entry is there), then copies the latest checkpoints to the anchor
   * file. Run periodically and at shutdown, so the newest entries are covered too.
   */
  checkpoint(): Promise<number> {
    return this.checkpoints.checkpoint();
  }

  /** Entries matching every given filter, oldest first unless `order: 'desc'`, with the total count. */
  async query(q: AuditQuery): Promise<{ total: number; entries: AuditEntry[] }> {
    const { limit, offset } = page(q, { default: 100, max: 1000 });
    const { total, rows } = await this.repo.query({ ...q, limit, offset });
    return { total, entries: rows.map(rowToEntry) };
  }

  /**
   * Recomputes every chain (one project, or all) and reports each edited, missing or reordered
   * entry, a chain head or checkpoint whose signature fails, a head behind a signed checkpoint and a
   * chain shorter than the checkpoint kept in the anchor file (the newest entries removed). With
   * `sinceCheckpoint`, only the entries from the latest signed checkpoint on are recomputed.
   */
  verify(projectId?: string, opts: AuditVerifyOptions = {}): Promise<AuditVerifyResult> {
    return this.verifier.verify(projectId, opts);
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

function isRetryable(err: unknown): boolean {
  const e = err as { errno?: number; code?: string };
  return e.errno === 1213 || e.errno === 1205 || e.code === 'SQLITE_BUSY';
}
