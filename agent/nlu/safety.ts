import type { Plan, PlanStep } from '../plan.js';
import { asksForChange, dropNegated, isQuestion, unsupportedAction } from './text.js';

/** What the assistant can do, for answers to requests it cannot serve. */
export const CAPABILITIES =
  'I can train ("train a detector on dataset helmets-v2 for 20 epochs"), deploy ("deploy helmets@3 to line 3"), roll back, pause or resume a rollout, ' +
  'report status ("status of the training"), list or search (datasets, models, devices), compare ("compare helmets@2 and helmets@3"), evaluate, promote, ' +
  'and explain runs, models and rollouts. Korean works too ("helmets-v2 데이터셋으로 학습하고 3번 라인에 배포해줘").';

/** Tools a negated phrase rules out, by the action words it uses. */
const NEGATED_TOOLS: Array<[RegExp, string[]]> = [
  // Phrasal verbs may have their object inside: "roll anything back", "roll helmets@3 out".
  [/deploy|roll\s*(?:[\w@.-]+\s+){0,3}?out|rollout|ship|push|release|배포/i, ['start_rollout']],
  [/train|fine-?tun|학습|훈련/i, ['start_training']],
  [/promot|승격/i, ['promote_model']],
  [/roll\s*-?(?:[\w@.-]+\s+){0,3}?back|revert|롤백/i, ['rollback_rollout']],
  [/cancel|취소/i, ['cancel_training']],
];

/**
 * The safety layer every planner's plan passes through (rules, LLM and hybrid): a question plans
 * only reads, a negated step is dropped (with the steps that needed its output), an action without
 * a tool is refused in plain words. `isRead` says whether a tool only reads.
 */
export function guardPlan(message: string, plan: Plan, isRead: (tool: string) => boolean): Plan {
  const question = isQuestion(message);
  const { kept, dropped } = question ? { kept: message, dropped: [] as string[] } : dropNegated(message);
  if (kept === '')
    return {
      steps: [],
      reply: `Understood: I will not do that (${dropped.join('; ')}). Nothing was planned.`,
    };
  const refused = question ? undefined : unsupportedAction(kept);
  if (refused !== undefined && refused.kind === 'delete')
    return {
      steps: [],
      reply: `I can't ${refused.verb} anything: there is no tool for that, on purpose. Here is what I can do: ${CAPABILITIES}`,
    };
  if (refused !== undefined)
    return {
      steps: [],
      reply:
        "I can't approve or reject steps: a person decides each approval on its card (web chat, Slack or MCP).",
    };
  if (plan.steps.length === 0) return plan;
  if (question) {
    const reads = plan.steps.filter((s) => isRead(s.tool));
    if (reads.length === plan.steps.length) return plan;
    const kept = renumber(
      plan.steps,
      plan.steps.map((s) => !isRead(s.tool)),
    );
    return kept.length > 0
      ? {
          ...plan,
          steps: kept,
          reply:
            'That reads as a question, so I only look things up; ask me to do it if you want the change.',
        }
      : {
          steps: [],
          reply: 'That reads as a question, so I changed nothing; ask me to do it if you want the change.',
        };
  }
  if (dropped.length === 0) return plan;
  const banned = new Set(
    NEGATED_TOOLS.filter(([re]) => dropped.some((d) => re.test(d))).flatMap(([, tools]) => tools),
  );
  // "Don't roll anything back, just show me line 2": what is left asks for no change, so no step may change anything.
  const readOnly = !asksForChange(kept);
  const remove = plan.steps.map((s) => banned.has(s.tool) || (readOnly && !isRead(s.tool)));
  if (!remove.some(Boolean)) return plan;
  const steps = renumber(plan.steps, remove);
  return { ...plan, steps, reply: `Not planned, as you said: ${dropped.map((d) => `"${d}"`).join(', ')}.` };
}

/** Removes steps (and every step that refers to a removed one's output), renumbering `$steps.N` references. */
function renumber(steps: PlanStep[], remove: boolean[]): PlanStep[] {
  const gone = [...remove];
  const refs = (s: PlanStep) =>
    [...JSON.stringify(s.args).matchAll(/\$steps\.(\d+)\./g)].map((m) => Number(m[1]));
  steps.forEach((s, i) => {
    if (refs(s).some((n) => gone[n])) gone[i] = true;
  });
  const index = new Map<number, number>();
  let next = 0;
  steps.forEach((_, i) => {
    if (!gone[i]) index.set(i, next++);
  });
  return steps
    .filter((_, i) => !gone[i])
    .map((s) => ({
      ...s,
      args: JSON.parse(
        JSON.stringify(s.args).replace(
          /\$steps\.(\d+)\./g,
          (_, n: string) => `$steps.${index.get(Number(n)) ?? n}.`,
        ),
      ) as Record<string, unknown>,
    }));
}
