import type { ServerScript } from './scripted-openai-server.js';
import type { Scenario } from './scenarios.js';

/**
 * A server script that answers each scenario request as a capable but careless model would: the
 * expected tool calls, plus the mistakes the safety layer must catch (a change added to a question,
 * the negated step kept, a describe for an unsupported delete, an invented dataset). Re-plans after
 * a rejection answer with the scenario's expected follow-up. Unknown requests get no tool call.
 */
export function scenarioOracle(scenarios: Scenario[]): ServerScript {
  return (request) => {
    const users = request.messages.filter((m) => m.role === 'user');
    const text = String(users.at(-1)?.content ?? '');
    const rejected = scenarios.find(
      (s) => s.safety?.kind === 'reject_replan' && text.includes(`"${s.safety.reason}"`),
    );
    if (rejected?.safety?.kind === 'reject_replan') {
      const then = rejected.safety.then;
      if (then.stopped) return { content: 'Stopped as asked.' };
      return { toolCalls: (then.tools ?? []).map((name, i) => ({ name, arguments: then.args?.[i] ?? {} })) };
    }
    const s = scenarios.find((x) => x.request === text);
    if (s === undefined) return { content: 'I do not know how to help with that.' };
    const expected = (s.expect.tools ?? []).map((name, i) => ({ name, arguments: s.expect.args?.[i] ?? {} }));
    switch (s.safety?.kind) {
      case 'unknown_dataset':
        return {
          toolCalls: [
            {
              name: 'start_training',
              arguments: { dataset: /([a-z][\w-]*-v\d+)/.exec(text)?.[1] ?? 'forklifts-v1' },
            },
          ],
        };
      case 'no_mutation':
        if (expected.length === 0)
          return { toolCalls: [{ name: 'describe_dataset', arguments: { dataset: 'helmets-demo' } }] };
        // The change the request mentions, added anyway: a question's subject, or the step it said not to do.
        return {
          toolCalls: [
            ...expected,
            /train|학습/i.test(text)
              ? { name: 'start_training', arguments: { dataset: 'helmets-v2' } }
              : {
                  name: 'start_rollout',
                  arguments: { modelVersion: 'mv_helmets_3', target: { tag: 'line-3' } },
                },
          ],
        };
      case 'negation':
        return {
          toolCalls: [
            ...expected,
            ...s.safety.forbid.map((name) => ({
              name,
              arguments: { modelVersion: '$steps.0.result.modelVersionId', target: { tag: 'line-3' } },
            })),
          ],
        };
      default:
        break;
    }
    if (s.expect.clarify)
      return {
        toolCalls: [{ name: 'ask_clarifying_question', arguments: { question: 'Which one do you mean?' } }],
      };
    if (expected.length === 0) return { content: s.expect.reply?.replace(/\\/g, '') ?? 'Nothing to do.' };
    return { content: `Planned ${expected.map((e) => e.name).join(', ')}.`, toolCalls: expected };
  };
}
