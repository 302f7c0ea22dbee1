import type { Generated } from 'kysely';

/** Approval requests and the hash-chained audit log. */
export interface GovernanceTables {
  approvals: {
    id: string;
    project_id: string;
    tool: string;
    /** Canonical JSON of the arguments as requested. */
    args: string;
    args_hash: string;
    /** Canonical JSON of the arguments an approver edited, null when not edited. */
    edited_args: string | null;
    edited_args_hash: string | null;
    risk: 'read' | 'write' | 'critical';
    reason: string;
    /** The ApprovalPolicy in force when requested, as JSON. */
    policy: string;
    requester_id: string;
    requester_name: string;
    requester_role: string;
    requester_kind: string;
    thread_id: string | null;
    step: number | null;
    status: 'pending' | 'approved' | 'rejected' | 'executed' | 'expired';
    decision: 'approve' | 'reject' | 'edit' | null;
    decided_by: string | null;
    decided_by_name: string | null;
    decided_by_role: string | null;
    decided_at: number | null;
    decision_reason: string | null;
    created_at: number;
    expires_at: number;
    consumed_at: number | null;
    consumed_by: string | null;
    /** Set while pending so the same tool+arguments+thread+step is requested once; null afterwards. */
    pending_key: string | null;
    /** When an edit under four-eyes rules replaced this request: the new request (requested by the editor). */
    superseded_by: string | null;
  };
  audit_log: {
    id: Generated<number>;
    project_id: string;
    /** Position in the project's chain, from 1. */
    seq: number;
    at: number;
    actor_id: string;
    actor_kind: string;
    action: string;
    thread_id: string | null;
    tool: string | null;
    approval_id: string | null;
    /** JSON object, `{}` when none. */
    data: string;
    prev_hash: string;
    hash: string;
    /** Id of the audit key the hash is an HMAC under; null for entries from before key ids. */
    key_id: string | null;
  };
  /** One row per project: the last entry of its chain, locked while appending; `mac` signs (seq, hash, updated_at). */
  audit_heads: {
    project_id: string;
    seq: number;
    hash: string;
    updated_at: number;
    key_id: string | null;
    mac: string | null;
  };
  /** Signed checkpoints of each chain: an HMAC over (project, seq, hash, at, key id). */
  audit_checkpoints: {
    id: Generated<number>;
    project_id: string;
    seq: number;
    hash: string;
    at: number;
    key_id: string;
    mac: string;
  };
}
