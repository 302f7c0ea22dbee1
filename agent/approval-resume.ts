import type { CallContext } from '../core/context.js';
import type { ToolApprovalView } from '../tools/services.js';
import type { ApprovalResume } from './state.js';

/** A decision sent from any channel (web card, Slack button, MCP, REST). */
export interface AgentDecision {
  approvalId: string;
  decision: 'approve' | 'reject' | 'edit';
  args?: Record<string, unknown>;
  reason?: string;
}

/** Who decided, as the graph records it. */
export function byOf(ctx: CallContext): { userId: string; name: string; role: string } {
  return { userId: ctx.user.userId, name: ctx.user.name, role: ctx.user.role };
}

/** What resumes the graph after a recorded decision: approve, reject (or expired), edit, or superseded by an edit. */
export function resumeOf(
  approval: ToolApprovalView,
  fallbackBy: { userId: string; name: string; role: string },
): ApprovalResume {
  const by = approval.decision?.by ?? fallbackBy;
  const reason = approval.decision?.reason ?? undefined;
  if (approval.supersededBy) {
    return {
      approvalId: approval.id,
      decision: 'superseded',
      next: approval.supersededBy,
      args: approval.approvedArgs as Record<string, unknown>,
      reason,
      by,
    };
  }
  if (approval.status === 'rejected' || approval.status === 'expired')
    return {
      approvalId: approval.id,
      decision: 'reject',
      reason: reason ?? `approval ${approval.status}`,
      by,
    };
  if (approval.decision?.decision === 'edit') {
    return {
      approvalId: approval.id,
      decision: 'edit',
      args: approval.approvedArgs as Record<string, unknown>,
      reason,
      by,
    };
  }
  return { approvalId: approval.id, decision: 'approve', reason, by };
}
