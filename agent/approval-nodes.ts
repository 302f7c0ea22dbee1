import { interrupt, type LangGraphRunnableConfig } from '@langchain/langgraph';
import { toToolError } from '../tools/run-tool.js';
import type { AgentGraphDeps, GraphKit } from './graph-kit.js';
import type { AgentStateValue, ApprovalInterrupt, ApprovalResume } from './state.js';

/** The graph's approval gate: `request_approval` records a request bound to the exact arguments; `approve` waits for the decision. */
export function approvalNodes(deps: AgentGraphDeps, kit: GraphKit) {
  const { registry, services } = deps;
  const { emitter, toolCtx, withStep, argsOf, awaitApproval } = kit;

  async function requestApprovalNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const step = state.planned!.steps[state.index]!;
    const resolved = argsOf(state, config, state.index);
    if (resolved.failed) return resolved.failed;
    const { args } = resolved;
    const tool = registry.get(step.tool);
    const ctx = toolCtx(state, config, state.index, step.tool);
    const approval = await services.approvals.request(ctx, {
      tool: step.tool,
      args,
      risk: tool.risk,
      reason: step.reason,
      threadId: ctx.threadId,
      step: state.index,
    });
    return awaitApproval(state, config, {
      type: 'approval',
      approvalId: approval.id,
      index: state.index,
      tool: step.tool,
      args,
      risk: tool.risk,
      policy: approval.policy,
      reason: step.reason,
    });
  }

  // Only interrupt() here: on resume this node re-runs from the top, and nothing before the interrupt has effects.
  async function approveNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const pending = state.pending!;
    const resume = interrupt<ApprovalInterrupt, ApprovalResume>(pending);
    const emit = emitter(state, config);
    if (resume.approvalId !== pending.approvalId) {
      // A stale decision for another request: keep waiting for this one.
      return { pending: { ...pending } };
    }
    if (resume.decision === 'superseded') {
      if (resume.next === undefined) return { pending: { ...pending } };
      // An edit under four-eyes rules opened a new request: wait for that one.
      return awaitApproval(state, config, {
        ...pending,
        approvalId: resume.next,
        args: resume.args ?? pending.args,
      });
    }
    const rejected = (decision: 'reject' | 'edit', reason: string | undefined) => {
      emit({
        type: 'agent.step',
        index: pending.index,
        tool: pending.tool,
        state: 'rejected',
        by: resume.by,
        reason,
      });
      return withStep(state.steps, pending.index, {
        state: 'rejected',
        decision,
        ...(decision === 'reject' ? { approvedBy: resume.by } : {}),
        decisionReason: reason ?? '',
      });
    };
    if (resume.decision === 'reject')
      return { pending: null, status: 'running' as const, steps: rejected('reject', resume.reason) };
    let args = pending.args;
    if (resume.decision === 'edit') {
      try {
        args = registry.parseInput(pending.tool, resume.args ?? {});
      } catch (err) {
        return {
          pending: null,
          steps: rejected('edit', `edited arguments are not valid: ${toToolError(err).message}`),
        };
      }
    }
    emit({
      type: 'agent.step',
      index: pending.index,
      tool: pending.tool,
      state: 'approved',
      args,
      by: resume.by,
    });
    return {
      pending: null,
      status: 'running' as const,
      steps: withStep(state.steps, pending.index, {
        state: 'approved',
        args,
        decision: resume.decision,
        approvedBy: resume.by,
        decisionReason: resume.reason,
      }),
    };
  }

  return { requestApprovalNode, approveNode };
}
