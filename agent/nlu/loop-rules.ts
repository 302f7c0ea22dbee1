import {
  describeTarget,
  findModelVersion,
  findModelVersions,
  findTarget,
  label,
  type Target,
} from './slots.js';
import {
  type SlotInput,
  type SlotRule,
  step,
  targetProblem,
  unknownModel,
  versionChoices,
} from './slot-kit.js';
import type { Plan } from '../plan.js';

/**
 * Slot rules of the intents around the loop that are neither plain reads of one record nor the
 * core changes: the rollout dry run, evaluation history and retrain policies and proposals.
 */

/** The model version and target a deployment names, or what to ask or answer instead. */
export function deployment(
  i: SlotInput,
  verb: string,
): { problem: Plan } | { version: string; versionLabel: string; target: Target } {
  const versions = findModelVersions(i.text, i.known);
  if ('unknown' in versions) return { problem: unknownModel(versions.unknown, i.known) };
  const named = versions.ok[0];
  if (named === undefined && i.modelVersion === undefined)
    return {
      problem: {
        steps: [],
        clarify: `Which model version should I ${verb}? Known: ${i.known.versions.map(label).join(', ') || 'none yet'}.`,
        choices: versionChoices(i),
      },
    };
  const found = findTarget(i.text, i.known);
  if (!('ok' in found)) return { problem: targetProblem(found, i) };
  return {
    version: named?.id ?? i.modelVersion!,
    versionLabel: named ? label(named) : i.modelVersion!,
    target: found.ok,
  };
}

/** "what would a rollout of helmets@3 to line 3 do": the dry run, which changes nothing. */
const planRollout: SlotRule = (i) => {
  const d = deployment(i, 'plan a rollout of');
  if ('problem' in d) return d.problem;
  return {
    steps: [
      step(
        'plan_rollout',
        { modelVersion: d.version, target: d.target },
        `dry run: what deploying ${d.versionLabel} to ${describeTarget(d.target)} would do (changes nothing)`,
      ),
    ],
  };
};

/** The evaluations recorded for a model version. */
const listEvaluations: SlotRule = (i) => {
  const mv = findModelVersion(i.text, i.known);
  if ('unknown' in mv) return unknownModel(mv.unknown, i.known);
  if (!('ok' in mv))
    return {
      steps: [],
      clarify: `Evaluations of which model version? Known: ${i.known.versions.map(label).join(', ') || 'none yet'}.`,
      choices: versionChoices(i),
    };
  return {
    steps: [step('list_evaluations', { modelVersion: mv.ok.id }, `show the evaluations of ${label(mv.ok)}`)],
  };
};

const listRetrainPolicies: SlotRule = () => ({
  steps: [step('list_retrain_policies', {}, 'show when each model is proposed for retraining')],
});

const listRetrainProposals: SlotRule = () => ({
  steps: [step('list_retrain_proposals', {}, 'show the retrain proposals the policies made')],
});

const checkRetrainPolicies: SlotRule = () => ({
  steps: [
    step(
      'check_retrain_policies',
      {},
      'check every retrain policy now and record a proposal for each that fires (trains nothing)',
    ),
  ],
});

/** Accepted samples that fire a retrain proposal: "after 200 accepted samples", "피드백 200개". */
function minSamples(text: string): number | undefined {
  const m =
    /(\d{1,6})\s*(?:accepted\s+|reviewed\s+|new\s+)?(?:feedback\s+)?(?:samples?|frames?|images?|examples?)/i.exec(
      text,
    ) ?? /(?:피드백|샘플|프레임|이미지)\s*(\d{1,6})\s*(?:개|장)?/.exec(text);
  const n = m ? Number(m[1]) : undefined;
  return n !== undefined && n >= 1 ? n : undefined;
}

/** A confidence drop that fires a proposal: "confidence drops by 10%", "신뢰도 0.1 떨어지면". */
function confidenceDrop(text: string): number | undefined {
  const m = /(?:confidence|신뢰도)\D{0,30}?(\d{1,2}(?:\.\d+)?)\s*(%|퍼센트|percent)?/i.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const drop = m[2] !== undefined || n >= 1 ? n / 100 : n;
  return drop > 0 && drop <= 1 ? drop : undefined;
}

/** "retrain helmets automatically after 200 accepted samples": sets the model's retrain policy. */
const setRetrainPolicy: SlotRule = (i) => {
  const names = [...new Set(i.known.versions.map((v) => v.model))];
  const versions = findModelVersions(i.text, i.known);
  const model =
    ('ok' in versions ? versions.ok[0]?.model : undefined) ??
    names.find((n) => i.text.toLowerCase().includes(n.toLowerCase())) ??
    (names.length === 1 ? names[0] : undefined);
  if (model === undefined)
    return {
      steps: [],
      clarify: `For which model should I set the retrain policy? Known: ${names.join(', ') || 'none yet'}.`,
    };
  const samples = minSamples(i.text);
  const drop = confidenceDrop(i.text);
  const t = findTarget(i.text, i.known);
  const tag = 'ok' in t && 'tag' in t.ok ? t.ok.tag : undefined;
  if (samples === undefined && (drop === undefined || tag === undefined))
    return {
      steps: [],
      clarify:
        'When should I propose a retrain: after how many accepted feedback samples (e.g. "after 200 accepted samples"), or when the confidence on which devices drops by how much (e.g. "when confidence on line 3 drops by 10%")?',
    };
  const args: Record<string, unknown> = { model };
  if (samples !== undefined) args.minAcceptedSamples = samples;
  if (drop !== undefined && tag !== undefined) args.confidenceDropOver = { tag, drop };
  const when = [
    samples !== undefined ? `after ${samples} accepted samples` : '',
    drop !== undefined && tag !== undefined
      ? `when confidence on ${tag} drops by ${Math.round(drop * 100)} %`
      : '',
  ].filter(Boolean);
  return {
    steps: [step('set_retrain_policy', args, `propose retraining ${model} ${when.join(' or ')}`)],
  };
};

/** "accept feedback sample fb_12", "reject fb_9: it is a reflection", "피드백 fb_12 승인해": one review decision. */
const reviewFeedback: SlotRule = (i) => {
  const sampleId = /\b(fb_[\w-]+)/i.exec(i.text)?.[1];
  if (sampleId === undefined)
    return {
      steps: [],
      clarify: 'Which feedback sample (fb_…)? The Feedback page lists them with their pictures.',
    };
  const reject = /\b(?:reject|decline|discard|dismiss)\w*|거절|반려|기각|버려/i.test(i.text);
  if (!reject)
    return {
      steps: [
        step('review_feedback', { sampleId, decision: 'accept' }, `accept feedback sample ${sampleId}`),
      ],
    };
  const reason = /(?:\bbecause\b|\bsince\b|:|—|-\s|이유는|왜냐하면|때문에)\s*(.+)$/i
    .exec(i.text)?.[1]
    ?.trim();
  if (reason === undefined || reason === '')
    return { steps: [], clarify: `Why should ${sampleId} be rejected? A rejection keeps its reason.` };
  return {
    steps: [
      step(
        'review_feedback',
        { sampleId, decision: 'reject', reason },
        `reject feedback sample ${sampleId}: ${reason}`,
      ),
    ],
  };
};

/** The slot rules of the loop's intents. */
export const LOOP_RULES = {
  planRollout,
  listEvaluations,
  listRetrainPolicies,
  listRetrainProposals,
  checkRetrainPolicies,
  setRetrainPolicy,
  reviewFeedback,
};
