import type { LangGraphRunnableConfig } from '@langchain/langgraph';
import { PlatformError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { ToolContext } from '../tools/define.js';
import type { AgentEventInput } from './events.js';
import type { BaseCheckpointSaver } from '@langchain/langgraph-checkpoint';
import type { Logger } from '../core/log.js';
import type { ToolRegistry } from '../tools/registry.js';
import type { ToolServices } from '../tools/services.js';
import type { PlatformCatalog, Planner } from './planner.js';
import { resolveArgs, type Plan, type StepOutcome } from './plan.js';
import { toToolError } from '../tools/run-tool.js';
import type { AgentStateValue, ApprovalInterrupt, Requester, StepRecord } from './state.js';

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

/** What the graph's nodes share: who asked, events, tool contexts, step records, and the vetting of plans. */
export function graphKit(deps: AgentGraphDeps) {
  const { registry, services } = deps;
  const mode = deps.approvalMode ?? 'mutating';
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

  /** A step's arguments resolved (`$steps.N…` references) and validated; or the state of a step that failed on them. */
  const argsOf = (state: AgentStateValue, config: LangGraphRunnableConfig, index: number) => {
    const step = state.planned!.steps[index]!;
    try {
      return { args: registry.parseInput(step.tool, resolveArgs(step.args, outcomes(state.steps))) };
    } catch (err) {
      const error = toToolError(err);
      emitter(state, config)({ type: 'agent.step', index, tool: step.tool, state: 'failed', error });
      return {
        failed: {
          steps: withStep(state.steps, index, { state: 'failed', error }),
          status: 'failed' as const,
        },
      };
    }
  };

  /** The step waits for this approval: both events every channel shows, and the state that says so. */
  const awaitApproval = (state: AgentStateValue, config: LangGraphRunnableConfig, p: ApprovalInterrupt) => {
    const emit = emitter(state, config);
    emit({ type: 'agent.step', index: p.index, tool: p.tool, state: 'awaiting_approval', args: p.args });
    const { type: _type, ...fields } = p;
    emit({ type: 'agent.approval', ...fields });
    return {
      pending: p,
      steps: withStep(state.steps, p.index, {
        state: 'awaiting_approval',
        args: p.args,
        approvalId: p.approvalId,
      }),
      status: 'awaiting_approval' as const,
    };
  };

  return {
    threadOf,
    requesterOf,
    emitter,
    toolCtx,
    needsApproval,
    withStep,
    stepRecords,
    vet,
    argsOf,
    awaitApproval,
    outcomes,
  };
}

/** The helpers `graphKit` returns. */
export type GraphKit = ReturnType<typeof graphKit>;
