import type { AuditQuery } from '../services/audit/index.js';
import type { CallContext, Role } from '../core/context.js';
import type { SearchIndex } from '../services/infra/search/port.js';
import type { DatasetService } from '../services/datasets/dataset.service.js';
import type { TrainingService } from '../services/training/training.service.js';
import type { ModelRegistry } from '../services/models/model.registry.js';
import type { ModelEvaluationService } from '../services/models/model.evaluation.js';
import type { FleetService } from '../services/fleet/fleet.service.js';
import type { RolloutService } from '../services/fleet/rollout.service.js';
import type { FeedbackService } from '../services/feedback/feedback.service.js';
import type { MembershipService } from '../services/accounts/membership.service.js';
import type { ExecutionOutcome } from '../services/approvals/model.js';
import type { ToolExecution } from '../services/approvals/execution-ledger.js';
import type { Risk } from '../services/approvals/policy.js';

/** The approval policy shown with every request (as `services/approvals` defines it). */
export interface ToolApprovalPolicy {
  risk: Risk;
  required: boolean;
  minRole: Role;
  selfApproval: boolean;
  strict: boolean;
  summary: string;
}

/** The part of an approval request the tools and the agent read. */
export interface ToolApprovalView {
  id: string;
  tool: string;
  risk: Risk;
  status: string;
  reason: string;
  policy: ToolApprovalPolicy;
  threadId: string | null;
  step: number | null;
  /** What may run: the edited arguments when edited, the requested ones otherwise. */
  approvedArgs: unknown;
  decision: {
    decision: 'approve' | 'reject' | 'edit';
    by: { userId: string; name: string; role: Role };
    at: number;
    reason: string | null;
  } | null;
  /** Set when an edit under four-eyes rules replaced this request with a new one in the editor's name. */
  supersededBy?: string | null;
}

/** What runTool and the agent need from the approvals service (ApprovalService satisfies it). */
export interface ApprovalsApi {
  request(
    ctx: CallContext,
    input: { tool: string; args: unknown; risk: Risk; reason: string; threadId?: string; step?: number },
  ): Promise<ToolApprovalView>;
  decide(
    ctx: CallContext,
    id: string,
    input: { decision: 'approve' | 'reject' | 'edit'; args?: unknown; reason?: string },
  ): Promise<ToolApprovalView>;
  /** Marks an approved request used; throws a PlatformError when tool, arguments hash or thread differ, or it was used or expired. */
  consume(
    ctx: CallContext,
    input: { approvalId: string; tool: string; args: unknown; threadId?: string; risk?: Risk },
  ): Promise<unknown>;
  /** The execution ledger: its lease length (for the renewal interval) and the runs whose process died. */
  readonly executions: {
    readonly leaseMs: number;
    orphaned(limit?: number, opts?: { outsideConversations?: boolean }): Promise<ToolExecution[]>;
  };
  /** The execution of a consumed approval, if it started. */
  execution(ctx: CallContext, approvalId: string): Promise<ToolExecution | undefined>;
  /** Takes over an execution whose process died; undefined while it is owned or once it ended. */
  takeOverExecution(ctx: CallContext, approvalId: string): Promise<ToolExecution | undefined>;
  /** Renews this process's lease on an execution it runs. */
  renewExecution(approvalId: string): Promise<boolean>;
  /** Records how an execution ended, with its audit entry, in one transaction. */
  finishExecution(ctx: CallContext, approvalId: string, outcome: ExecutionOutcome): Promise<void>;
  get(ctx: CallContext, id: string): Promise<ToolApprovalView>;
  list(
    ctx: CallContext,
    query: {
      status?: 'pending' | 'approved' | 'rejected' | 'executed' | 'expired';
      threadId?: string;
      limit?: number;
    },
  ): Promise<ToolApprovalView[]>;
}

/** Who did something, for the audit log. */
export interface ToolAuditActor {
  id: string;
  kind: 'user' | 'token' | 'system';
}

/** One audit entry as the tools read it back. */
export interface ToolAuditEntry {
  seq: number;
  at: number;
  actor: ToolAuditActor;
  action: string;
  threadId: string | null;
  tool: string | null;
  approvalId: string | null;
  data: Record<string, unknown>;
}

/** What the tools need from the audit log (AuditLog satisfies it). */
export interface AuditApi {
  append(input: {
    projectId: string;
    actor: ToolAuditActor;
    action: string;
    threadId?: string;
    tool?: string;
    approvalId?: string;
    data?: Record<string, unknown>;
  }): Promise<unknown>;
  query(q: AuditQuery): Promise<{ total: number; entries: ToolAuditEntry[] }>;
  verify(projectId?: string): Promise<{
    ok: boolean;
    checked: number;
    problems: Array<{ seq: number; kind: string; detail: string }>;
  }>;
}

/**
 * The services the tools call, built once by the composition root: every one is always there (the
 * platform builds them all), so no tool checks for a missing service. Tests pass small fakes
 * (`toolServicesFixture` in `services.fixtures.ts`).
 */
export interface ToolServices {
  approvals: ApprovalsApi;
  audit: AuditApi;
  /** APPROVAL_STRICT, for the policy shown with requests. */
  approvalStrict: boolean;
  search: SearchIndex;
  datasets: Pick<DatasetService, 'list' | 'get' | 'import' | 'resplit' | 'export'>;
  training: Pick<TrainingService, 'start' | 'get' | 'list' | 'metrics' | 'logs' | 'cancel'>;
  models: Pick<ModelRegistry, 'list' | 'get' | 'compare' | 'promote'>;
  /** Evaluations of model versions on dataset splits. */
  evaluations: Pick<ModelEvaluationService, 'evaluate' | 'list'>;
  fleet: Pick<FleetService, 'list' | 'get'>;
  rollouts: Pick<RolloutService, 'plan' | 'start' | 'status' | 'pause' | 'resume' | 'rollback' | 'list'>;
  feedback: Pick<FeedbackService, 'summary' | 'review' | 'toDataset'>;
  /** Retrain policies and their proposals (the feedback service). */
  retrain: Pick<FeedbackService, 'setPolicy' | 'policies' | 'proposals' | 'evaluatePolicies'>;
  /** People and their roles in the project, and projects (the membership service). */
  members: Pick<MembershipService, 'members' | 'setMemberRole' | 'projects' | 'createProject'>;
}
