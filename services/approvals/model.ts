import { type ApprovalPolicy, type Risk } from './policy.js';
import type { Principal, Role } from '../../core/context.js';

/** Where a request is in its life; `expired` once its TTL passed before it was used. */
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'executed' | 'expired';

/** A decision someone took on a request. */
export interface ApprovalDecisionRecord {
  decision: 'approve' | 'reject' | 'edit';
  by: { userId: string; name: string; role: Role };
  at: number;
  reason: string | null;
}

/** One approval request: a tool call bound to the hash of its canonical arguments. */
export interface ApprovalRequest {
  id: string;
  projectId: string;
  tool: string;
  /** The arguments as requested. */
  args: unknown;
  argsHash: string;
  /** The arguments an approver edited, when the decision was `edit`. */
  editedArgs: unknown;
  editedArgsHash: string | null;
  /** What may run: the edited arguments when edited, the requested ones otherwise. */
  approvedArgs: unknown;
  approvedArgsHash: string;
  risk: Risk;
  reason: string;
  /** The policy in force when the request was made. */
  policy: ApprovalPolicy;
  requester: { userId: string; name: string; role: Role; kind: Principal['kind'] };
  threadId: string | null;
  step: number | null;
  status: ApprovalStatus;
  decision: ApprovalDecisionRecord | null;
  createdAt: number;
  expiresAt: number;
  consumedAt: number | null;
  consumedBy: string | null;
  /** Set when an edit under four-eyes rules replaced this request: the new request, whose requester is the editor. */
  supersededBy: string | null;
}

/** What a caller asks approval for. */
export interface ApprovalRequestInput {
  tool: string;
  args: unknown;
  risk: Risk;
  /** One line: why this step is needed. */
  reason: string;
  /** Defaults to the call context's thread. */
  threadId?: string;
  /** Index of the step in the plan. */
  step?: number;
}

/** A decision on a request; `edit` approves changed arguments. */
export interface ApprovalDecisionInput {
  decision: 'approve' | 'reject' | 'edit';
  /** The new arguments (edit only). */
  args?: unknown;
  reason?: string;
  /** Validates (and may normalise) edited arguments; throws to refuse them. Overrides the service's `validateArgs`. */
  validate?: (args: unknown) => unknown;
}

/** What a tool presents at execution time. */
export interface ApprovalConsumeInput {
  approvalId: string;
  tool: string;
  args: unknown;
  /** Defaults to the call context's thread. */
  threadId?: string;
  /** The tool's risk, for the `tool.started` audit entry written in the same transaction as the consumption. */
  risk?: Risk;
}

/** How a started execution ended, with the audit entry that records it (written in the same transaction). */
export type ExecutionOutcome =
  | { status: 'finished'; output: unknown; audit: Record<string, unknown> }
  | {
      status: 'failed' | 'interrupted';
      error: { code: string; message: string; details?: Record<string, unknown> };
      audit: Record<string, unknown>;
    };
