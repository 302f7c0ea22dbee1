import type { Plan } from './plan.js';
import type { PlanInput, Planner, ReplanInput } from './planner.js';
import { IntentClassifier, type IntentScore } from './nlu/classifier.js';
import { INTENT_LABEL, READ_INSTEAD, SLOT_RULES, targetProblem, type SlotInput } from './nlu/intents.js';
import { findDataset, findDevice, findEpochs, findTarget, loadKnown, type Known } from './nlu/slots.js';
import { agentT, languageOf } from './i18n.js';
import {
  correctTypos,
  dropNegated,
  isQuestion,
  maskSlots,
  numbersInWords,
  unsupportedAction,
} from './nlu/text.js';

/** Below this similarity to the nearest corpus phrasing, the request is not understood. */
const UNDERSTOOD = 0.3;
/** Below this, a close second reading makes the planner ask which one was meant. */
const CONFIDENT = 0.5;
/** How close the second reading must be to count as close. */
const MARGIN = 0.05;

const STOP_ONLY =
  /^\s*(?:no|nope|stop|cancel|don'?t|do not|never mind|abort)\b|^\s*(?:아니|중지|취소|그만|하지\s*마)/i;

/** How the rules planner read a request: what the evals and the hybrid planner look at. */
export interface Reading {
  plan: Plan;
  /** The best intent and its score (undefined when a safety rule answered before classification). */
  best?: IntentScore;
  /** Whether the planner is sure: a clear best reading above the threshold, or a safety answer. */
  confident: boolean;
}

/**
 * The planner used when no LLM is configured, in four layers: normalisation (typos corrected
 * against the corpus vocabulary and catalog names), intent recognition (a nearest-neighbour
 * classifier over the paraphrase corpus in `nlu/corpus.ts`), slot extraction (one rule per intent
 * in `nlu/intents.ts`, every name checked against the platform), and a safety layer (questions
 * plan only reads, negated steps are dropped, unsupported actions are refused, unclear requests
 * get a question with the two best readings as choices).
 */
export class RulesPlanner implements Planner {
  readonly kind = 'rules' as const;
  private readonly classifier = new IntentClassifier();

  async plan({ message, ctx, catalog }: PlanInput): Promise<Plan> {
    return this.read(message, await loadKnown(catalog, ctx)).plan;
  }

  /** The plan and how sure the planner is of it. */
  read(message: string, known: Known, context: { modelVersion?: string } = {}): Reading {
    const t = agentT(languageOf(message));
    const capabilities = t('planner.capabilities');
    const corrected = numbersInWords(correctTypos(message.trim(), known, this.classifier.vocabulary));
    const question = isQuestion(corrected);
    const { kept, dropped } = question
      ? { kept: corrected, dropped: [] as string[] }
      : dropNegated(corrected);
    if (kept === '')
      return {
        plan: {
          steps: [],
          reply: t('planner.willNot', { what: dropped.join('; ') }),
        },
        confident: true,
      };
    const refused = question ? undefined : unsupportedAction(kept);
    if (refused !== undefined) {
      const reply =
        refused.kind === 'approve'
          ? t('planner.cantApprove')
          : t('planner.cantDo', { verb: refused.verb, capabilities });
      return { plan: { steps: [], reply }, confident: true };
    }
    const said = maskSlots(kept, known);
    const ranked = this.classifier.rank(said);
    const [best, second] = ranked;
    if (best === undefined || best.score < UNDERSTOOD)
      return { plan: fallback(kept, known, capabilities), ...(best ? { best } : {}), confident: false };
    if (
      best.score < CONFIDENT &&
      second !== undefined &&
      second.score > best.score - MARGIN &&
      READ_INSTEAD[best.intent] !== undefined &&
      !question
    ) {
      return {
        plan: {
          steps: [],
          clarify: t('planner.clarify', {
            first: t(`intent.${best.intent}`, { defaultValue: INTENT_LABEL[best.intent] }),
            second: t(`intent.${second.intent}`, { defaultValue: INTENT_LABEL[second.intent] }),
          }),
          choices: [best, second].map((r) => ({
            label: t(`intent.${r.intent}`, { defaultValue: INTENT_LABEL[r.intent] ?? r.intent }),
            message: `${INTENT_LABEL[r.intent]}: ${message.trim()}`,
          })),
        },
        best,
        confident: false,
      };
    }
    let intent = best.intent;
    if (question && READ_INSTEAD[intent] !== undefined) {
      intent = READ_INSTEAD[intent]!;
      if (best.intent === 'deploy' && !('ok' in findTarget(kept, known))) intent = 'rollout_status';
    }
    const input: SlotInput = {
      text: kept,
      original: message,
      said,
      known,
      ...(context.modelVersion ? { modelVersion: context.modelVersion } : {}),
    };
    const plan = SLOT_RULES[intent]!(input);
    if (dropped.length > 0 && plan.steps.length > 0)
      plan.reply = t('planner.notPlannedAsSaid', { what: dropped.map((d) => `"${d}"`).join(', ') });
    return {
      plan,
      best,
      confident: best.score >= CONFIDENT || second === undefined || second.score <= best.score - MARGIN,
    };
  }

  async replan({ ctx, catalog, plan, rejection }: ReplanInput): Promise<Plan> {
    const reason = rejection.reason.trim();
    const t = agentT(languageOf(reason === '' ? plan.steps[rejection.index]?.reason : reason));
    const stopped = { n: rejection.index + 1, tool: rejection.tool, reason };
    if (reason === '' || STOP_ONLY.test(reason))
      return { steps: [], reply: t(reason ? 'planner.stoppedReason' : 'planner.stopped', stopped) };
    const known = await loadKnown(catalog, ctx);
    const remaining = plan.steps.slice(rejection.index + 1);
    // A reason that changes an argument of the rejected step ("use 10 epochs", "line 2 instead") retries that step changed.
    const changed = adjust(rejection.tool, rejection.args, reason, known);
    if ('clarify' in changed || 'reply' in changed) return { steps: [], ...changed };
    if (changed.args !== undefined) {
      return {
        steps: [
          {
            tool: rejection.tool,
            args: changed.args,
            reason: `${plan.steps[rejection.index]?.reason ?? rejection.tool} (changed as asked: ${reason})`,
          },
          ...remaining,
        ],
      };
    }
    // Otherwise the reason may be a new request of its own.
    const modelVersion =
      typeof rejection.args.modelVersion === 'string' ? rejection.args.modelVersion : undefined;
    const fresh = this.read(reason, known, modelVersion ? { modelVersion } : {}).plan;
    if (fresh.steps.length > 0) return fresh;
    return { steps: [], reply: t('planner.stoppedReason', stopped) };
  }
}

/** A request no intent matched: a bare dataset or device name is a request to see it; else what I can do. */
function fallback(text: string, known: Known, capabilities: string): Plan {
  const ds = findDataset(text, known);
  if ('ok' in ds)
    return {
      steps: [{ tool: 'describe_dataset', args: { dataset: ds.ok }, reason: `show dataset ${ds.ok}` }],
    };
  const device = findDevice(text, known);
  if (device !== undefined)
    return {
      steps: [{ tool: 'describe_device', args: { device: device.id }, reason: `show device ${device.name}` }],
    };
  return { steps: [], reply: `${agentT(languageOf(text))('planner.notUnderstood', { capabilities })}` };
}

/** Adjusts the rejected step's arguments from the rejection reason, when it names a change. */
function adjust(
  tool: string,
  args: Record<string, unknown>,
  reason: string,
  known: Known,
): { args?: Record<string, unknown> } | { clarify: string } | { reply: string } {
  if (tool === 'start_training') {
    const epochs = findEpochs(reason);
    const ds = findDataset(reason, known);
    if ('unknown' in ds)
      return {
        reply: `dataset "${ds.unknown}" not found; known datasets: ${known.datasets.join(', ') || 'none yet (import one first)'}`,
      };
    if (epochs === undefined && !('ok' in ds)) return {};
    return {
      args: {
        ...args,
        ...(epochs !== undefined ? { epochs } : {}),
        ...('ok' in ds ? { dataset: ds.ok } : {}),
      },
    };
  }
  if (tool === 'start_rollout' || tool === 'plan_rollout') {
    const target = findTarget(reason, known);
    if ('ok' in target) return { args: { ...args, target: target.ok } };
    if ('ambiguous' in target || 'unknown' in target) {
      const problem = targetProblem(target, { text: reason, original: reason, said: reason, known });
      return problem.clarify !== undefined
        ? { clarify: problem.clarify }
        : { reply: problem.reply ?? 'Stopped.' };
    }
  }
  return {};
}
