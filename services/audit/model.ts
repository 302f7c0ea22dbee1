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
