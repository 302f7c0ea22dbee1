import type { Selectable } from 'kysely';
import type { CallContext, Principal, Role } from '../../core/context.js';
import { newId } from '../../core/ids.js';
import type { AuditActor, AuditEntryInput } from '../audit/audit-log.js';
import type { Database } from '../infra/db/schema.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import type { ApprovalRequest } from './model.js';
import type { ApprovalPolicy, Risk } from './policy.js';

/** An approval row. */
export type ApprovalRow = Selectable<Database['approvals']>;

/** The call a pending request asks approval for. */
export interface RequestedCall {
  projectId: string;
  tool: string;
  /** Canonical JSON of the arguments and its sha256. */
  args: { json: string; hash: string };
  risk: Risk;
  reason: string;
  policy: ApprovalPolicy;
  threadId: string | null;
  step: number | null;
}

/** The key that makes one pending request per (project, tool, arguments, thread, step). */
function pendingKeyOf(call: RequestedCall): string {
  return sha256Hex(
    canonicalJson({
      projectId: call.projectId,
      tool: call.tool,
      hash: call.args.hash,
      threadId: call.threadId,
      step: call.step,
    }),
  );
}

/** The row of a new pending request, in `requester`'s name, expiring `ttlMs` after `now`. */
export function pendingRow(
  call: RequestedCall,
  requester: Principal,
  now: number,
  ttlMs: number,
): ApprovalRow {
  return {
    id: newId('apr'),
    project_id: call.projectId,
    tool: call.tool,
    args: call.args.json,
    args_hash: call.args.hash,
    edited_args: null,
    edited_args_hash: null,
    risk: call.risk,
    reason: call.reason,
    policy: JSON.stringify(call.policy),
    requester_id: requester.userId,
    requester_name: requester.name,
    requester_role: requester.role,
    requester_kind: requester.kind,
    thread_id: call.threadId,
    step: call.step,
    status: 'pending',
    decision: null,
    decided_by: null,
    decided_by_name: null,
    decided_by_role: null,
    decided_at: null,
    decision_reason: null,
    created_at: now,
    expires_at: now + ttlMs,
    consumed_at: null,
    consumed_by: null,
    pending_key: pendingKeyOf(call),
    superseded_by: null,
  };
}

/** The audit entry of a new request (`supersedes` names the request an edit closed). */
export function requestedEntry(ctx: CallContext, row: ApprovalRow, supersedes?: string): AuditEntryInput {
  return {
    projectId: row.project_id,
    actor: actorOf(ctx),
    action: 'approval.requested',
    tool: row.tool,
    approvalId: row.id,
    ...(row.thread_id === null ? {} : { threadId: row.thread_id }),
    data: {
      risk: row.risk,
      reason: row.reason,
      step: row.step === null ? null : Number(row.step),
      argsHash: row.args_hash,
      args: JSON.parse(row.args) as unknown,
      policy: parsePolicy(row.policy).summary,
      ...(supersedes === undefined ? {} : { supersedes }),
      requestId: ctx.requestId,
    },
  };
}

/** A decision as recorded: what was decided, why, and the edited arguments (canonical JSON and hash) of an edit. */
export interface DecisionRecord {
  decision: 'approve' | 'reject' | 'edit';
  reason: string | null;
  edited: { json: string; hash: string } | null;
}

/** The audit entry of a decision on `row` (the row as it was before the decision). */
export function decidedEntry(
  ctx: CallContext,
  row: ApprovalRow,
  d: DecisionRecord & { supersededBy?: string },
): AuditEntryInput {
  return {
    projectId: row.project_id,
    actor: actorOf(ctx),
    action: 'approval.decided',
    tool: row.tool,
    approvalId: row.id,
    ...(row.thread_id === null ? {} : { threadId: row.thread_id }),
    data: {
      decision: d.decision,
      reason: d.reason,
      role: ctx.user.role,
      risk: row.risk,
      requesterId: row.requester_id,
      argsHash: row.args_hash,
      ...(d.edited === null
        ? {}
        : { editedArgsHash: d.edited.hash, editedArgs: JSON.parse(d.edited.json) as unknown }),
      ...(d.supersededBy === undefined ? {} : { supersededBy: d.supersededBy }),
      requestId: ctx.requestId,
    },
  };
}

/** A row as the domain's `ApprovalRequest`; a pending or approved request past its expiry reads as expired. */
export function toRequest(row: ApprovalRow, now: number): ApprovalRequest {
  const expiresAt = Number(row.expires_at);
  const stale = (row.status === 'pending' || row.status === 'approved') && expiresAt <= now;
  const args = JSON.parse(row.args) as unknown;
  const editedArgs = row.edited_args === null ? null : (JSON.parse(row.edited_args) as unknown);
  return {
    id: row.id,
    projectId: row.project_id,
    tool: row.tool,
    args,
    argsHash: row.args_hash,
    editedArgs,
    editedArgsHash: row.edited_args_hash,
    approvedArgs: row.edited_args === null ? args : editedArgs,
    approvedArgsHash: row.edited_args_hash ?? row.args_hash,
    risk: row.risk,
    reason: row.reason,
    policy: parsePolicy(row.policy),
    requester: {
      userId: row.requester_id,
      name: row.requester_name,
      role: row.requester_role as Role,
      kind: row.requester_kind as Principal['kind'],
    },
    threadId: row.thread_id,
    step: row.step === null ? null : Number(row.step),
    status: stale ? 'expired' : row.status,
    decision:
      row.decision === null
        ? null
        : {
            decision: row.decision,
            by: {
              userId: row.decided_by ?? '',
              name: row.decided_by_name ?? '',
              role: (row.decided_by_role ?? 'viewer') as Role,
            },
            at: Number(row.decided_at),
            reason: row.decision_reason,
          },
    createdAt: Number(row.created_at),
    expiresAt,
    consumedAt: row.consumed_at === null ? null : Number(row.consumed_at),
    consumedBy: row.consumed_by,
    supersededBy: row.superseded_by ?? null,
  };
}

/** The policy stored with a request. */
export function parsePolicy(text: string): ApprovalPolicy {
  return JSON.parse(text) as ApprovalPolicy;
}

/** The audit actor of a call context. */
export function actorOf(ctx: CallContext): AuditActor {
  return { id: ctx.user.userId, kind: ctx.user.kind };
}
