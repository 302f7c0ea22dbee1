import { createHmac } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../approvals/canonical-json.js';
import type { AuditKeyring } from './audit-keys.js';
import { rowToEntry, type AuditRow, type CheckpointRow, type HeadRow } from './audit.repository.js';
import type { AuditEntry } from './model.js';

/** A signed checkpoint as kept in the anchor file. */
export interface AnchorCheckpoint {
  seq: number;
  hash: string;
  at: number;
  keyId: string;
  mac: string;
}

type SignedType = 'audit.head' | 'audit.checkpoint';

/**
 * The chain's keys: the HMAC of new entries, heads and checkpoints under the current key, and the
 * checks of stored ones under the key they name.
 */
export class AuditSigner {
  constructor(
    readonly keyring: AuditKeyring | undefined,
    readonly legacyKey: string | undefined,
  ) {}

  /** The secret a new entry's hash is an HMAC under (undefined: plain sha256). */
  get entryKey(): string | undefined {
    return this.keyring?.current.secret ?? this.legacyKey;
  }

  sign(
    type: SignedType,
    c: { projectId: string; seq: number; hash: string; at: number },
  ): { keyId: string; mac: string } | undefined {
    const key = this.keyring?.current;
    if (key === undefined) return undefined;
    return { keyId: key.id, mac: macOf(key.secret, type, { ...c, keyId: key.id }) };
  }

  private signatureOk(
    type: SignedType,
    c: { projectId: string; seq: number; hash: string; at: number; keyId: string; mac: string },
  ): boolean {
    const secret = this.keyring?.keys.get(c.keyId);
    return secret !== undefined && macOf(secret, type, c) === c.mac;
  }

  /** A head from before signed heads (no key id) passes until the project has a checkpoint; `verify` checks that. */
  headSignatureOk(head: HeadRow): boolean {
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

  checkpointSignatureOk(cp: CheckpointRow | (AnchorCheckpoint & { project_id: string })): boolean {
    return this.signatureOk('audit.checkpoint', {
      projectId: cp.project_id,
      seq: Number(cp.seq),
      hash: cp.hash,
      at: Number(cp.at),
      keyId: 'key_id' in cp ? cp.key_id : cp.keyId,
      mac: cp.mac,
    });
  }

  /** The secret an entry's hash is an HMAC under (undefined: plain sha256), or 'unknown' for a key id not configured. */
  keyFor(row: AuditRow): string | undefined | 'unknown' {
    if (row.key_id === null) return this.legacyKey;
    return this.keyring?.keys.get(row.key_id) ?? 'unknown';
  }
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

/** The hash a stored row should carry ('' when it cannot be recomputed). */
export function rowHash(row: AuditRow, hmacKey: string | undefined): string {
  try {
    return entryHash(rowToEntry(row), hmacKey);
  } catch {
    return '';
  }
}

/** The HMAC of a signed head or checkpoint: `type` keeps one from being passed off as the other. */
function macOf(
  secret: string,
  type: SignedType,
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
