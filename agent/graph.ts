import { END, START, StateGraph, type LangGraphRunnableConfig } from '@langchain/langgraph';
import { newId } from '../core/ids.js';
import { toToolError } from '../tools/run-tool.js';
import { approvalNodes } from './approval-nodes.js';
import type { ThreadStatus } from './events.js';
import { graphKit, type AgentGraphDeps } from './graph-kit.js';
import { conditionOf, type Plan } from './plan.js';
import { templateReport } from './report.js';
import { AgentState, type AgentStateValue } from './state.js';
import { stepNodes } from './step-nodes.js';

export type { AgentGraphDeps } from './graph-kit.js';

type Node = 'plan' | 'request_approval' | 'approve' | 'act' | 'wait' | 'replan' | 'skip' | 'report';

/** Builds and compiles plan → approve → act → wait → report with the given checkpointer. */
export function buildAgentGraph(deps: AgentGraphDeps) {
  const { services, planner, catalog } = deps;
  const maxReplans = deps.maxReplans ?? 2;

  const kit = graphKit(deps);
  const { threadOf, requesterOf, emitter, needsApproval, stepRecords, vet, outcomes, withStep } = kit;
  const { requestApprovalNode, approveNode } = approvalNodes(deps, kit);
  const { actNode, waitNode } = stepNodes(deps, kit);

  async function planNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const { user, projectId } = requesterOf(state);
    const ctx = { user, projectId, requestId: newId('req'), threadId: threadOf(config), log: deps.log };
    let plan: Plan;
    try {
      const emit = emitter(state, config);
      plan = vet(
        state.preset ??
          (await planner.plan({
            message: state.message,
            ctx,
            catalog,
            history: state.history,
            onToken: (text) => emit({ type: 'agent.token', text }),
          })),
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
      preset: null,
      planned: plan,
      index: 0,
      steps: stepRecords(plan),
      pending: null,
      status,
      summary: null,
      replans: 0,
    };
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

  // A step whose `when` does not hold (e.g. "only if better than production") stops the plan: it and every later step are skipped.
  function skipNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const step = state.planned!.steps[state.index]!;
    const gate = conditionOf(step, outcomes(state.steps));
    const why = gate.holds ? 'the condition changed' : gate.why;
    const emit = emitter(state, config);
    let steps = state.steps;
    for (const s of state.steps.slice(state.index)) {
      emit({ type: 'agent.step', index: s.index, tool: s.tool, state: 'skipped', reason: why });
      steps = withStep(steps, s.index, { state: 'skipped' });
    }
    const reply = [state.planned!.reply, `Stopped before step ${state.index + 1} (${step.tool}): ${why}`]
      .filter(Boolean)
      .join('\n');
    return { steps, status: 'stopped' as const, planned: { ...state.planned!, reply } };
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
    // checked before the approval is asked for, so nobody is asked to approve a step that must not run
    if (!conditionOf(plan.steps[state.index]!, outcomes(state.steps)).holds) return 'skip';
    return needsApproval(plan.steps[state.index]!.tool) ? 'request_approval' : 'act';
  };

  const graph = new StateGraph(AgentState)
    .addNode('plan', planNode)
    .addNode('request_approval', requestApprovalNode)
    .addNode('approve', approveNode)
    .addNode('act', actNode)
    .addNode('wait', waitNode)
    .addNode('replan', replanNode)
    .addNode('skip', skipNode)
    .addNode('report', reportNode)
    .addEdge(START, 'plan')
    .addConditionalEdges('plan', next, ['request_approval', 'act', 'skip', 'report'])
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
      'skip',
      'report',
    ])
    .addConditionalEdges('wait', next, ['request_approval', 'act', 'skip', 'report'])
    .addConditionalEdges('replan', next, ['request_approval', 'act', 'skip', 'report'])
    .addEdge('skip', 'report')
    .addEdge('report', END);

  return graph.compile({ checkpointer: deps.checkpointer, name: 'visioninapp-agent' });
}

/** The compiled agent graph. */
export type AgentGraph = ReturnType<typeof buildAgentGraph>;
