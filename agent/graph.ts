import { END, START, StateGraph, interrupt, type LangGraphRunnableConfig } from '@langchain/langgraph';
import type { BaseCheckpointSaver } from '@langchain/langgraph-checkpoint';
import { PlatformError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/log.js';
import type { ToolContext } from '../tools/define.js';
import type { ToolRegistry } from '../tools/registry.js';
import { runTool, toToolError } from '../tools/run-tool.js';
import type { ToolServices } from '../tools/services.js';
import type { AgentEventInput, ThreadStatus } from './events.js';
import { resolveArgs, type Plan, type StepOutcome } from './plan.js';
import type { PlatformCatalog, Planner } from './planner.js';
import { templateReport } from './report.js';
import {
  AgentState,
  type Requester,
  type ApprovalResume,
  type WaitOutcome,
  type ApprovalInterrupt,
  type WaitInterrupt,
  type StepRecord,
  type AgentStateValue,
} from './state.js';

/** What the graph is built from. */
export interface AgentGraphDeps {
  registry: ToolRegistry;
  services: ToolServices;
  planner: Planner;
  catalog: PlatformCatalog;
  checkpointer: BaseCheckpointSaver;
  /** `every-step` makes read steps ask too (APPROVAL_MODE). */
  approvalMode?: 'mutating' | 'every-step';
  /** Streams an event of a thread. */
  emit: (threadId: string, projectId: string, event: AgentEventInput) => void;
  log: Logger;
  /** Writes the end-of-request summary; the template when absent. */
  reporter?: (state: AgentStateValue) => Promise<string>;
  /** Re-plans allowed after rejections before the request stops. */
  maxReplans?: number;
}

type Node = 'plan' | 'request_approval' | 'approve' | 'act' | 'wait' | 'replan' | 'report';

/** Builds and compiles plan → approve → act → wait → report with the given checkpointer. */
export function buildAgentGraph(deps: AgentGraphDeps) {
  const { registry, services, planner, catalog } = deps;
  const mode = deps.approvalMode ?? 'mutating';
  const maxReplans = deps.maxReplans ?? 2;

  const threadOf = (config: LangGraphRunnableConfig) => String(config.configurable?.thread_id ?? '');
  const requesterOf = (state: AgentStateValue): Requester => {
    if (state.requester === null)
      throw new PlatformError('internal', 'conversation has no requester; start it through AgentRuntime');
    return state.requester;
  };
  const emitter = (state: AgentStateValue, config: LangGraphRunnableConfig) => (event: AgentEventInput) =>
    deps.emit(threadOf(config), requesterOf(state).projectId, event);
  const toolCtx = (
    state: AgentStateValue,
    config: LangGraphRunnableConfig,
    index: number,
    tool: string,
  ): ToolContext => {
    const { user, projectId } = requesterOf(state);
    const threadId = threadOf(config);
    const emit = emitter(state, config);
    return {
      user,
      projectId,
      threadId,
      requestId: newId('req'),
      log: deps.log.child({ threadId, tool }),
      services,
      registry,
      onProgress: (progress) => emit({ type: 'agent.progress', index, tool, progress }),
    };
  };
  const needsApproval = (tool: string) => registry.get(tool).risk !== 'read' || mode === 'every-step';
  const outcomes = (steps: StepRecord[]): StepOutcome[] =>
    steps.map((s) => ({ output: s.output, result: s.result }));
  const withStep = (steps: StepRecord[], index: number, patch: Partial<StepRecord>) =>
    steps.map((s) => (s.index === index ? { ...s, ...patch } : s));

  const stepRecords = (plan: Plan, from: StepRecord[] = []): StepRecord[] =>
    plan.steps.map(
      (s, index) =>
        from[index] ?? {
          index,
          tool: s.tool,
          reason: s.reason,
          risk: registry.has(s.tool) ? registry.get(s.tool).risk : 'read',
          state: 'pending' as const,
        },
    );

  /** Drops steps naming unknown tools or tools the agent must never run itself, with a note. */
  const vet = (plan: Plan): Plan => {
    const problems: string[] = [];
    for (const s of plan.steps) {
      if (!registry.has(s.tool)) problems.push(`unknown tool "${s.tool}"`);
      else if (registry.get(s.tool).authorizesItself)
        problems.push(`${s.tool} is decided by people, never by the assistant`);
    }
    if (problems.length === 0) return plan;
    return {
      steps: [],
      reply: `I could not plan this safely: ${problems.join('; ')}. Known tools: ${registry.names().join(', ')}.`,
    };
  };

  async function planNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const { user, projectId } = requesterOf(state);
    const ctx = { user, projectId, requestId: newId('req'), threadId: threadOf(config), log: deps.log };
    let plan: Plan;
    try {
      const emit = emitter(state, config);
      plan = vet(
        await planner.plan({
          message: state.message,
          ctx,
          catalog,
          history: state.history,
          onToken: (text) => emit({ type: 'agent.token', text }),
        }),
      );
    } catch (err) {
      plan = { steps: [], reply: `I could not plan this: ${toToolError(err).message}` };
    }
    emitter(state, config)({ type: 'agent.plan', plan });
    await services.audit.append({
      projectId,
      actor: { id: user.userId, kind: user.kind },
      action: 'plan.proposed',
      threadId: threadOf(config),
      data: { message: state.message, steps: plan.steps, ...(plan.clarify ? { clarify: plan.clarify } : {}) },
    });
    const status: ThreadStatus = plan.clarify ? 'clarify' : 'running';
    return {
      planned: plan,
      index: 0,
      steps: stepRecords(plan),
      pending: null,
      status,
      summary: null,
      replans: 0,
    };
  }

  async function requestApprovalNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const step = state.planned!.steps[state.index]!;
    const emit = emitter(state, config);
    let args: Record<string, unknown>;
    try {
      args = registry.parseInput(step.tool, resolveArgs(step.args, outcomes(state.steps)));
    } catch (err) {
      const error = toToolError(err);
      emit({ type: 'agent.step', index: state.index, tool: step.tool, state: 'failed', error });
      return {
        steps: withStep(state.steps, state.index, { state: 'failed', error }),
        status: 'failed' as const,
      };
    }
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
    const pending: ApprovalInterrupt = {
      type: 'approval',
      approvalId: approval.id,
      index: state.index,
      tool: step.tool,
      args,
      risk: tool.risk,
      policy: approval.policy,
      reason: step.reason,
    };
    emit({ type: 'agent.step', index: state.index, tool: step.tool, state: 'awaiting_approval', args });
    emit({
      type: 'agent.approval',
      approvalId: approval.id,
      index: state.index,
      tool: step.tool,
      args,
      risk: tool.risk,
      policy: approval.policy,
      reason: step.reason,
    });
    return {
      pending,
      steps: withStep(state.steps, state.index, {
        state: 'awaiting_approval',
        args,
        approvalId: approval.id,
      }),
      status: 'awaiting_approval' as const,
    };
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
      const args = resume.args ?? pending.args;
      const next: ApprovalInterrupt = { ...pending, approvalId: resume.next, args };
      emit({
        type: 'agent.step',
        index: pending.index,
        tool: pending.tool,
        state: 'awaiting_approval',
        args,
      });
      emit({
        type: 'agent.approval',
        approvalId: next.approvalId,
        index: next.index,
        tool: next.tool,
        args,
        risk: next.risk,
        policy: next.policy,
        reason: next.reason,
      });
      return {
        pending: next,
        steps: withStep(state.steps, pending.index, {
          state: 'awaiting_approval',
          args,
          approvalId: next.approvalId,
        }),
        status: 'awaiting_approval' as const,
      };
    }
    if (resume.decision === 'reject') {
      emit({
        type: 'agent.step',
        index: pending.index,
        tool: pending.tool,
        state: 'rejected',
        by: resume.by,
        reason: resume.reason,
      });
      return {
        pending: null,
        status: 'running' as const,
        steps: withStep(state.steps, pending.index, {
          state: 'rejected',
          decision: 'reject',
          approvedBy: resume.by,
          decisionReason: resume.reason ?? '',
        }),
      };
    }
    let args = pending.args;
    if (resume.decision === 'edit') {
      try {
        args = registry.parseInput(pending.tool, resume.args ?? {});
      } catch (err) {
        const reason = `edited arguments are not valid: ${toToolError(err).message}`;
        emit({
          type: 'agent.step',
          index: pending.index,
          tool: pending.tool,
          state: 'rejected',
          by: resume.by,
          reason,
        });
        return {
          pending: null,
          steps: withStep(state.steps, pending.index, {
            state: 'rejected',
            decision: 'edit',
            decisionReason: reason,
          }),
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

  async function actNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const index = state.index;
    const step = state.planned!.steps[index]!;
    const record = state.steps[index]!;
    const emit = emitter(state, config);
    let args = record.args;
    if (args === undefined) {
      try {
        args = registry.parseInput(step.tool, resolveArgs(step.args, outcomes(state.steps)));
      } catch (err) {
        const error = toToolError(err);
        emit({ type: 'agent.step', index, tool: step.tool, state: 'failed', error });
        return { steps: withStep(state.steps, index, { state: 'failed', error }), status: 'failed' as const };
      }
    }
    emit({ type: 'agent.step', index, tool: step.tool, state: 'running', args });
    const ctx = toolCtx(state, config, index, step.tool);
    const result = await runTool(ctx, step.tool, args, { approvalId: record.approvalId });
    if (!result.ok) {
      emit({ type: 'agent.step', index, tool: step.tool, state: 'failed', error: result.error });
      return {
        steps: withStep(state.steps, index, { state: 'failed', args, error: result.error }),
        status: 'failed' as const,
      };
    }
    const wait = registry.get(step.tool).waitFor?.(result.output as never);
    const patch: Partial<StepRecord> = {
      args,
      output: result.output,
      replayed: result.replayed,
      state: wait ? 'waiting' : 'done',
      wait,
    };
    emit({
      type: 'agent.step',
      index,
      tool: step.tool,
      state: wait ? 'waiting' : 'done',
      output: result.output,
    });
    if (wait) {
      emit({ type: 'agent.wait', index, wait });
      return { steps: withStep(state.steps, index, patch), status: 'waiting' as const };
    }
    return { steps: withStep(state.steps, index, patch), index: index + 1 };
  }

  // Only interrupt() here as well: the outcome arrives as the resume value.
  async function waitNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const index = state.index;
    const record = state.steps[index]!;
    const wait = record.wait!;
    const outcome = interrupt<WaitInterrupt, WaitOutcome>({
      type: 'wait',
      index,
      kind: wait.kind,
      id: wait.id,
    });
    const emit = emitter(state, config);
    emit({ type: 'agent.resumed', index, wait, ok: outcome.ok, summary: outcome.summary });
    const patch: Partial<StepRecord> = {
      result: outcome.data,
      waitOutcome: { ok: outcome.ok, status: outcome.status, summary: outcome.summary },
      state: outcome.ok ? 'done' : 'failed',
      ...(outcome.ok ? {} : { error: { code: 'conflict' as const, message: outcome.summary } }),
    };
    emit({
      type: 'agent.step',
      index,
      tool: record.tool,
      state: outcome.ok ? 'done' : 'failed',
      output: outcome.data,
    });
    if (!outcome.ok) return { steps: withStep(state.steps, index, patch), status: 'failed' as const };
    return { steps: withStep(state.steps, index, patch), index: index + 1, status: 'running' as const };
  }

  async function replanNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const rejected = state.steps[state.index]!;
    const { user, projectId } = requesterOf(state);
    if (state.replans >= maxReplans) return { status: 'stopped' as const };
    const ctx = { user, projectId, requestId: newId('req'), threadId: threadOf(config), log: deps.log };
    let next: Plan;
    try {
      next = vet(
        await planner.replan({
          message: state.message,
          ctx,
          catalog,
          history: state.history,
          plan: state.planned!,
          done: state.index,
          rejection: {
            index: state.index,
            tool: rejected.tool,
            args: rejected.args ?? {},
            reason: rejected.decisionReason ?? '',
          },
        }),
      );
    } catch (err) {
      next = { steps: [], reply: `I could not re-plan: ${toToolError(err).message}` };
    }
    if (next.steps.length === 0)
      return {
        status: 'stopped' as const,
        planned: { ...state.planned!, reply: next.reply ?? next.clarify },
      };
    const done = state.planned!.steps.slice(0, state.index + 1);
    const plan: Plan = { steps: [...done, ...next.steps], reply: next.reply };
    emitter(state, config)({ type: 'agent.plan', plan });
    const steps = stepRecords(plan, state.steps.slice(0, state.index + 1));
    return {
      planned: plan,
      steps,
      index: state.index + 1,
      replans: state.replans + 1,
      status: 'running' as const,
    };
  }

  async function reportNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const status: ThreadStatus =
      state.status === 'running' || state.status === 'waiting' || state.status === 'awaiting_approval'
        ? 'done'
        : state.status;
    const final = { ...state, status };
    let text: string;
    try {
      text = deps.reporter ? await deps.reporter(final) : templateReport(final);
    } catch (err) {
      deps.log.warn({ err }, 'LLM report failed; using the template');
      text = templateReport(final);
    }
    emitter(state, config)({ type: 'agent.report', status, text });
    return {
      summary: text,
      status,
      history: [...state.history, { message: state.message, report: text }].slice(-20),
    };
  }

  const next = (state: AgentStateValue): Node => {
    if (state.status === 'failed' || state.status === 'stopped' || state.status === 'clarify')
      return 'report';
    const plan = state.planned;
    if (plan === null || state.index >= plan.steps.length) return 'report';
    return needsApproval(plan.steps[state.index]!.tool) ? 'request_approval' : 'act';
  };

  const graph = new StateGraph(AgentState)
    .addNode('plan', planNode)
    .addNode('request_approval', requestApprovalNode)
    .addNode('approve', approveNode)
    .addNode('act', actNode)
    .addNode('wait', waitNode)
    .addNode('replan', replanNode)
    .addNode('report', reportNode)
    .addEdge(START, 'plan')
    .addConditionalEdges('plan', next, ['request_approval', 'act', 'report'])
    .addConditionalEdges('request_approval', (s) => (s.status === 'failed' ? 'report' : 'approve'), [
      'approve',
      'report',
    ])
    .addConditionalEdges(
      'approve',
      (s) => {
        if (s.pending !== null) return 'approve';
        return s.steps[s.index]?.state === 'rejected' ? 'replan' : 'act';
      },
      ['approve', 'act', 'replan'],
    )
    .addConditionalEdges('act', (s) => (s.status === 'waiting' ? 'wait' : next(s)), [
      'wait',
      'request_approval',
      'act',
      'report',
    ])
    .addConditionalEdges('wait', next, ['request_approval', 'act', 'report'])
    .addConditionalEdges('replan', next, ['request_approval', 'act', 'report'])
    .addEdge('report', END);

  return graph.compile({ checkpointer: deps.checkpointer, name: 'visioninapp-agent' });
}

/** The compiled agent graph. */
export type AgentGraph = ReturnType<typeof buildAgentGraph>;
