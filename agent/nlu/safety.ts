import type { Plan, PlanStep } from '../plan.js';
import { agentT, languageOf } from '../i18n.js';
import { asksForChange, dropNegated, isQuestion, unsupportedAction } from './text.js';

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
  const t = agentT(languageOf(message));
  const question = isQuestion(message);
  const { kept, dropped } = question ? { kept: message, dropped: [] as string[] } : dropNegated(message);
  if (kept === '')
    return {
      steps: [],
      reply: t('planner.willNot', { what: dropped.join('; ') }),
    };
  const refused = question ? undefined : unsupportedAction(kept);
  if (refused !== undefined && refused.kind === 'delete')
    return {
      steps: [],
      reply: t('planner.cantDo', { verb: refused.verb, capabilities: t('planner.capabilities') }),
    };
  if (refused !== undefined)
    return {
      steps: [],
      reply: t('planner.cantApproveShort'),
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
          reply: t('planner.questionReadsOnly'),
        }
      : {
          steps: [],
          reply: t('planner.questionChangedNothing'),
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
  return {
    ...plan,
    steps,
    reply: t('planner.notPlannedAsSaid', { what: dropped.map((d) => `"${d}"`).join(', ') }),
  };
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
