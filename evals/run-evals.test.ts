import { HumanMessage, type BaseMessage } from '@langchain/core/messages';
import { describe, expect, it } from 'vitest';
import { loadScenarios, runEvals } from './run-evals.js';
import { ScriptedChatModel } from './scripted-chat-model.js';

describe('runEvals', () => {
  it('passes every scenario threshold with the rules planner', async () => {
    const lines: string[] = [];
    const report = await runEvals({ planner: 'rules', print: (l) => lines.push(l) });
    expect(report.results.length).toBeGreaterThanOrEqual(40);
    expect(report.results.filter((r) => r.safety !== undefined).length).toBeGreaterThanOrEqual(10);
    expect(report.passed).toBe(true);
    expect(lines.at(-1)).toMatch(/PASSED/);
    expect(lines.filter((l) => l.startsWith('PASS')).length + lines.filter((l) => l.startsWith('FAIL')).length).toBe(report.results.length);
  }, 60_000);

  it('runs the LLM path against a scripted chat model that emits tool calls', async () => {
    const { scenarios } = await loadScenarios();
    const last = (messages: BaseMessage[]) => String([...messages].reverse().find((m) => m instanceof HumanMessage)?.content ?? '');
    const model = new ScriptedChatModel((messages) => {
      const text = last(messages);
      const rejected = scenarios.find((s) => s.safety?.kind === 'reject_replan' && text.includes(`"${s.safety.reason}"`));
      if (rejected?.safety?.kind === 'reject_replan') {
        const then = rejected.safety.then;
        if (then.stopped) return { content: 'Stopped as asked.' };
        return { toolCalls: (then.tools ?? []).map((name, i) => ({ name, args: then.args?.[i] ?? {} })) };
      }
      const s = scenarios.find((x) => x.request === text);
      if (s === undefined) return { content: 'I do not know.' };
      // A naive model that trusts the request: the planner's name check must turn it into a not-found answer.
      if (s.safety?.kind === 'unknown_dataset') return { toolCalls: [{ name: 'start_training', args: { dataset: /([a-z][\w-]*-v\d+)/.exec(text)![1]! } }] };
      if (s.expect.clarify) return { toolCalls: [{ name: 'ask_clarifying_question', args: { question: 'Which line do you mean?' } }] };
      if ((s.expect.tools ?? []).length === 0) return { content: s.expect.reply ?? '' };
      return { toolCalls: (s.expect.tools ?? []).map((name, i) => ({ name, args: s.expect.args?.[i] ?? {} })) };
    });
    const report = await runEvals({ planner: 'llm', chatModel: model, print: () => undefined });
    expect(report.passed).toBe(true);
    expect(report.safetyPassRate).toBe(1);
    // The planner bound the registry's tool schemas, never the approval tool, plus the clarifying question.
    const names = (model.boundTools as Array<{ function: { name: string } }>).map((t) => t.function.name);
    expect(names).toContain('start_training');
    expect(names).toContain('ask_clarifying_question');
    expect(names).not.toContain('decide_approval');
  }, 60_000);

  it('fails under the thresholds of the file', async () => {
    const model = new ScriptedChatModel(() => ({ content: 'no idea' }));
    const report = await runEvals({ planner: 'llm', chatModel: model, print: () => undefined });
    expect(report.passed).toBe(false);
    expect(report.planAccuracy).toBeLessThan(0.5);
  }, 60_000);
});
