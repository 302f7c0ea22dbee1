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

/** Words asking to see something rather than to change it. */
const READ_VERB =
  /^\s*(?:please\s+)?(?:show|list|display|give me|tell me|what|which|who|when|where|how|is|are|was|were|did|does|do|has|have|can you show|find|search|look up|get me|describe|explain|summari[sz]e|check on)\b|(?:보여|알려|찾아|검색|설명|요약|확인해\s*줘|목록|리스트)/i;

/** The action words a request must use for a step of each changing tool (passive Korean forms such as 배포된 name a state, not an action). */
const TOOL_ACTION: Record<string, RegExp> = {
  start_rollout:
    /deploy|roll\s*(?:[\w@.-]+\s+){0,3}?out\b|\bship|\bpush|releas|\binstall|\bput\b|\bsend\b|\bgo live|upgrade|update|배포(?!된|돼|되|중|하면)|올려|깔아|적용|내려|업데이트/i,
  start_training: /train|fine[\s-]?tun|학습(?!된|중)|훈련|파인\s*튜닝/i,
  promote_model: /promot|production|prod\b|승격|운영|프로덕션/i,
  rollback_rollout: /roll\s*-?(?:[\w@.-]+\s+){0,3}?back|revert|restore|undo|롤백|되돌|복구|원복/i,
  cancel_training: /cancel|abort|kill|stop|취소|중단|중지/i,
};

/**
 * A request that asks to see something (a read verb, and no action word of the tool) keeps none of
 * a plan's changing steps: a model that adds "and deploy it" to "show me the datasets" is overruled.
 * Requests that ask for a change are left to the planner: a model reads typos and paraphrases
 * ("learn a detector", "swtich back") that no word list does.
 */
function ungrounded(message: string, steps: PlanStep[], isRead: (tool: string) => boolean): boolean[] {
  if (!READ_VERB.test(message)) return steps.map(() => false);
  return steps.map((s) => {
    if (isRead(s.tool)) return false;
    const action = TOOL_ACTION[s.tool];
    return action === undefined ? !asksForChange(message) : !action.test(message);
  });
}

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
  const unasked = ungrounded(kept, plan.steps, isRead);
  if (dropped.length === 0) {
    if (!unasked.some(Boolean)) return plan;
    const steps = renumber(plan.steps, unasked);
    return {
      ...plan,
      steps,
      reply: t('planner.lookupChangedNothing'),
    };
  }
  const banned = new Set(
    NEGATED_TOOLS.filter(([re]) => dropped.some((d) => re.test(d))).flatMap(([, tools]) => tools),
  );
  // "Don't roll anything back, just show me line 2": what is left asks for no change, so no step may change anything.
  const readOnly = !asksForChange(kept);
  const remove = plan.steps.map((s, i) => banned.has(s.tool) || (readOnly && !isRead(s.tool)) || unasked[i]!);
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
