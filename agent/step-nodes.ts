import { interrupt, type LangGraphRunnableConfig } from '@langchain/langgraph';
import { runTool } from '../tools/run-tool.js';
import type { AgentGraphDeps, GraphKit } from './graph-kit.js';
import type { AgentStateValue, StepRecord, WaitInterrupt, WaitOutcome } from './state.js';

/** The graph's work: `act` runs a step through `runTool`; `wait` pauses until the job or rollout it started ends. */
export function stepNodes(deps: AgentGraphDeps, kit: GraphKit) {
  const { registry } = deps;
  const { emitter, toolCtx, withStep, argsOf } = kit;

  async function actNode(state: AgentStateValue, config: LangGraphRunnableConfig) {
    const index = state.index;
    const step = state.planned!.steps[index]!;
    const record = state.steps[index]!;
    const emit = emitter(state, config);
    let args = record.args;
    if (args === undefined) {
      const resolved = argsOf(state, config, index);
      if (resolved.failed) return resolved.failed;
      args = resolved.args;
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

  return { actNode, waitNode };
}
