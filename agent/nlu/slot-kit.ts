import type { Choice, Plan, PlanStep } from '../plan.js';
import {
  describeTarget,
  findDataset,
  findJob,
  findModelVersion,
  findRollout,
  findTarget,
  label,
  latest,
  type Found,
  type Known,
  type Target,
} from './slots.js';

/** What a slot rule reads: the request (typos corrected, negated clauses dropped), its masked form, the catalog. */
export interface SlotInput {
  /** The request with typos corrected and negated clauses dropped: slots are read from it. */
  text: string;
  /** The request as the person wrote it, for choices that repeat it with a slot filled in. */
  original: string;
  /** The text the classifier read (names replaced by slot tokens): intent words are checked on it. */
  said: string;
  known: Known;
  /** The model version a rejected step had, when re-planning. */
  modelVersion?: string;
}

/** Turns a recognised intent and its slots into a plan. */
export type SlotRule = (input: SlotInput) => Plan;

/** A plan step. */
export const step = (tool: string, args: Record<string, unknown>, reason: string): PlanStep => ({
  tool,
  args,
  reason,
});
/** Choices that repeat the request with one slot filled in. */
function choicesFor(original: string, values: Array<{ label: string; fill: string }>): Choice[] {
  return values
    .slice(0, 8)
    .map((v) => ({ label: v.label, message: `${original.trim().replace(/[.?!]+$/, '')} (${v.fill})` }));
}

function datasetChoices(i: SlotInput): Choice[] {
  return choicesFor(
    i.original,
    i.known.datasets.map((d) => ({ label: d, fill: `dataset ${d}` })),
  );
}

/** One choice per model version, newest first, with its stage. */
export function versionChoices(i: SlotInput): Choice[] {
  const versions = [...i.known.versions].sort(
    (a, b) => (b.createdAt ?? b.version) - (a.createdAt ?? a.version),
  );
  return choicesFor(
    i.original,
    versions.map((v) => ({
      label: `${label(v)}${v.stage ? ` (${v.stage})` : ''}`,
      fill: `model ${label(v)}`,
    })),
  );
}

function targetChoices(i: SlotInput, tags = i.known.tags): Choice[] {
  return choicesFor(
    i.original,
    tags.map((t) => {
      const n = i.known.devices.filter((d) => d.tags.includes(t)).length;
      return { label: `${t} (${n} ${n === 1 ? 'device' : 'devices'})`, fill: `target ${t}` };
    }),
  );
}

/** The answer for a dataset name the platform does not know, with the known ones. */
export function unknownDataset(name: string, known: Known): Plan {
  return {
    steps: [],
    reply: `dataset "${name}" not found; known datasets: ${known.datasets.join(', ') || 'none yet (import one first)'}`,
  };
}

/** The answer for a model version the platform does not know, with the known ones. */
export function unknownModel(name: string, known: Known): Plan {
  return {
    steps: [],
    reply: `model version "${name}" not found; known versions: ${known.versions.map(label).join(', ') || 'none yet (train one first)'}`,
  };
}

/** The answer when a target is missing, unknown or ambiguous. */
export function targetProblem(target: Exclude<Found<Target>, { ok: Target }>, i: SlotInput): Plan {
  const { known } = i;
  if ('missing' in target)
    return {
      steps: [],
      clarify: `Where should I deploy it? Known device tags: ${known.tags.join(', ') || 'none'}.`,
      choices: targetChoices(i),
    };
  if ('unknown' in target)
    return {
      steps: [],
      reply: `no devices are tagged "${target.unknown}"; known device tags: ${known.tags.join(', ') || 'none'}`,
    };
  return {
    steps: [],
    clarify: `Which target do you mean: ${target.ambiguous.join(', ') || 'no device tags are known'}? Name one line or device group; I will not deploy to several at once without it.`,
    choices: targetChoices(i, target.ambiguous.length > 0 ? target.ambiguous : known.tags),
  };
}

/** Runs `then` with the dataset the request names, or asks which one (with choices), or says it is unknown. */
export function withDataset(i: SlotInput, verb: string, then: (ds: string) => Plan): Plan {
  const ds = findDataset(i.text, i.known);
  if ('ok' in ds) return then(ds.ok);
  if ('unknown' in ds) return unknownDataset(ds.unknown, i.known);
  if ('ambiguous' in ds)
    return {
      steps: [],
      clarify: `Which dataset do you mean: ${ds.ambiguous.join(' or ')}?`,
      choices: choicesFor(
        i.original,
        ds.ambiguous.map((d) => ({ label: d, fill: `dataset ${d}` })),
      ),
    };
  return {
    steps: [],
    clarify: `Which dataset should I ${verb}? Known datasets: ${i.known.datasets.join(', ') || 'none yet'}.`,
    choices: datasetChoices(i),
  };
}

/** Runs `then` with the model version the request names, or asks which one (with choices), or says it is unknown. */
export function withVersion(i: SlotInput, verb: string, then: (v: Known['versions'][number]) => Plan): Plan {
  const mv = findModelVersion(i.text, i.known);
  if ('ok' in mv) return then(mv.ok);
  if ('unknown' in mv) return unknownModel(mv.unknown, i.known);
  return {
    steps: [],
    clarify: `Which model version should I ${verb}? Known: ${i.known.versions.map(label).join(', ') || 'none yet'}.`,
    choices: versionChoices(i),
  };
}

/** The rollout a request is about: by id, else the newest on the named target that `fits`, else the newest that fits. */
export function pickRollout(
  i: SlotInput,
  fits: (status: string) => boolean,
): { rollout?: Known['rollouts'][number]; problem?: Plan; where?: string } {
  const byId = findRollout(i.text, i.known);
  if (byId !== undefined) return { rollout: byId };
  const target = findTarget(i.text, i.known);
  if ('ok' in target) {
    const t = target.ok;
    const on = i.known.rollouts.filter((r) =>
      'tag' in t ? r.target === t.tag : t.devices.includes(r.target),
    );
    return { rollout: latest(on.filter((r) => fits(r.status))) ?? latest(on), where: describeTarget(t) };
  }
  if ('unknown' in target) return { problem: targetProblem(target, i) };
  return { rollout: latest(i.known.rollouts.filter((r) => fits(r.status))) ?? latest(i.known.rollouts) };
}

/** Runs `then` with the job the request names, else the newest job; says so when there is none. */
export function jobOr(i: SlotInput, then: (id: string) => Plan): Plan {
  const j = findJob(i.text, i.known) ?? latest(i.known.jobs);
  if (j === undefined)
    return { steps: [], reply: 'There are no training jobs yet; start one with "train … on dataset …".' };
  return then(j.id);
}
