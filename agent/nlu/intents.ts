import type { Choice, Plan, PlanStep } from '../plan.js';
import {
  describeTarget,
  findBackend,
  findBatch,
  findCanary,
  findDataset,
  findDevice,
  findEpochs,
  findImageSize,
  findStartingPoint,
  findJob,
  findJobStatus,
  findModelVersion,
  findModelVersions,
  findRollout,
  findStage,
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

const step = (tool: string, args: Record<string, unknown>, reason: string): PlanStep => ({
  tool,
  args,
  reason,
});
const DEPLOY_WORDS =
  /\bdeploy\w*|\broll\s?(?:it\s+|them\s+)?out\b|\bship\b|\bpush\b.*\bout\b|\brelease\b|배포|적용/i;
const ACTIVE = ['pending', 'canary', 'waves', 'running'];

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

function versionChoices(i: SlotInput): Choice[] {
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

function unknownDataset(name: string, known: Known): Plan {
  return {
    steps: [],
    reply: `dataset "${name}" not found; known datasets: ${known.datasets.join(', ') || 'none yet (import one first)'}`,
  };
}

function unknownModel(name: string, known: Known): Plan {
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

function withDataset(i: SlotInput, verb: string, then: (ds: string) => Plan): Plan {
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

function withVersion(i: SlotInput, verb: string, then: (v: Known['versions'][number]) => Plan): Plan {
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
function pickRollout(
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

const train: SlotRule = (i) =>
  withDataset(i, 'train on', (dataset) => {
    const args: Record<string, unknown> = { dataset };
    const epochs = findEpochs(i.text);
    if (epochs !== undefined) args.epochs = epochs;
    const backend = findBackend(i.text);
    if (backend !== undefined) {
      args.backend = backend.backend;
      if (backend.model !== undefined) args.model = backend.model;
    }
    const imgsz = findImageSize(i.text);
    if (imgsz !== undefined) args.imgsz = imgsz;
    const batch = findBatch(i.text);
    if (batch !== undefined) args.batch = batch;
    const from = findStartingPoint(i.text);
    if (from !== undefined) args.from = from;
    const extras = [
      from ? `fine-tuned from ${from}` : '',
      epochs ? `${epochs} epochs` : '',
      backend ? `${backend.backend}${backend.model ? ` ${backend.model}` : ''}` : '',
      imgsz ? `${imgsz} px images` : '',
      batch ? `batch ${batch}` : '',
    ].filter(Boolean);
    const steps = [
      step(
        'start_training',
        args,
        `train a detector on ${dataset}${extras.length ? ` (${extras.join(', ')})` : ''} as asked`,
      ),
    ];
    if (DEPLOY_WORDS.test(i.said)) {
      const target = findTarget(i.text, i.known);
      if (!('ok' in target)) return targetProblem(target, i);
      const canary = findCanary(i.text);
      steps.push(
        step(
          'start_rollout',
          {
            modelVersion: '$steps.0.result.modelVersionId',
            target: target.ok,
            ...(canary ? { canary } : {}),
          },
          `deploy the trained model to ${describeTarget(target.ok)} (canary first)`,
        ),
      );
    }
    return { steps };
  });

const deploy: SlotRule = (i) => {
  const versions = findModelVersions(i.text, i.known);
  if ('unknown' in versions) return unknownModel(versions.unknown, i.known);
  let version: string | undefined;
  let versionLabel = '';
  const named = versions.ok[0];
  if (named !== undefined) {
    version = named.id;
    versionLabel = label(named);
  } else if (i.modelVersion !== undefined) {
    version = i.modelVersion;
    versionLabel = i.modelVersion;
  } else {
    return {
      steps: [],
      clarify: `Which model version should I deploy? Known: ${i.known.versions.map(label).join(', ') || 'none yet'}.`,
      choices: versionChoices(i),
    };
  }
  const target = findTarget(i.text, i.known);
  if (!('ok' in target)) return targetProblem(target, i);
  const canary = findCanary(i.text);
  return {
    steps: [
      step(
        'start_rollout',
        { modelVersion: version, target: target.ok, ...(canary ? { canary } : {}) },
        `deploy ${versionLabel} to ${describeTarget(target.ok)} (canary first${canary ? ` on ${canary} devices` : ''})`,
      ),
    ],
  };
};

const rollback: SlotRule = (i) => {
  const p = pickRollout(i, (s) => s !== 'rolled_back');
  if (p.problem) return p.problem;
  if (p.rollout === undefined || p.rollout.status === 'rolled_back')
    return { steps: [], reply: `There is no rollout${p.where ? ` on ${p.where}` : ''} to roll back.` };
  return {
    steps: [
      step(
        'rollback_rollout',
        { rolloutId: p.rollout.id },
        `roll back rollout ${p.rollout.id}${p.where ? ` on ${p.where}` : ''} as asked`,
      ),
    ],
  };
};

const pause: SlotRule = (i) => {
  const p = pickRollout(i, (s) => ACTIVE.includes(s));
  if (p.problem) return p.problem;
  if (p.rollout === undefined) return { steps: [], reply: 'There is no rollout to pause.' };
  return {
    steps: [step('pause_rollout', { rolloutId: p.rollout.id }, `pause rollout ${p.rollout.id} as asked`)],
  };
};

const resume: SlotRule = (i) => {
  const p = pickRollout(i, (s) => s === 'paused');
  if (p.problem) return p.problem;
  if (p.rollout === undefined) return { steps: [], reply: 'There is no rollout to resume.' };
  return {
    steps: [step('resume_rollout', { rolloutId: p.rollout.id }, `resume rollout ${p.rollout.id} as asked`)],
  };
};

const rolloutStatus: SlotRule = (i) => {
  const p = pickRollout(i, () => true);
  if (p.problem) return p.problem;
  if (p.rollout === undefined) return { steps: [], reply: 'There are no rollouts yet.' };
  return {
    steps: [step('rollout_status', { rolloutId: p.rollout.id }, `show the state of rollout ${p.rollout.id}`)],
  };
};

function jobOr(i: SlotInput, then: (id: string) => Plan): Plan {
  const j = findJob(i.text, i.known) ?? latest(i.known.jobs);
  if (j === undefined)
    return { steps: [], reply: 'There are no training jobs yet; start one with "train … on dataset …".' };
  return then(j.id);
}

const trainingStatus: SlotRule = (i) =>
  jobOr(i, (jobId) => ({
    steps: [step('training_status', { jobId }, `show the state of training job ${jobId}`)],
  }));
const trainingMetrics: SlotRule = (i) =>
  jobOr(i, (jobId) => ({
    steps: [step('training_metrics', { jobId }, `show the per-epoch metrics of ${jobId}`)],
  }));
const trainingLogs: SlotRule = (i) =>
  jobOr(i, (jobId) => ({
    steps: [step('training_logs', { jobId, lines: 50 }, `show the last log lines of ${jobId}`)],
  }));

const cancelTraining: SlotRule = (i) => {
  const j =
    findJob(i.text, i.known) ??
    latest(i.known.jobs.filter((x) => ['queued', 'assigned', 'running'].includes(x.status)));
  if (j === undefined)
    return { steps: [], reply: 'No training job is running, so there is nothing to cancel.' };
  return { steps: [step('cancel_training', { jobId: j.id }, `cancel training job ${j.id} as asked`)] };
};

const listTrainingJobs: SlotRule = (i) => {
  const status = findJobStatus(i.text);
  return {
    steps: [
      step(
        'list_training_jobs',
        status ? { status } : {},
        status ? `list ${status} training jobs` : 'list training jobs',
      ),
    ],
  };
};

const listDatasets: SlotRule = () => ({ steps: [step('list_datasets', {}, 'list the datasets')] });

const describeDataset: SlotRule = (i) => {
  const ds = findDataset(i.text, i.known);
  if ('ok' in ds) return { steps: [step('describe_dataset', { dataset: ds.ok }, `show dataset ${ds.ok}`)] };
  if ('unknown' in ds) return unknownDataset(ds.unknown, i.known);
  return listDatasets(i);
};

const listModels: SlotRule = (i) => {
  const stage = findStage(i.text);
  return {
    steps: [
      step(
        'list_models',
        stage ? { stage } : {},
        stage ? `list model versions at ${stage}` : 'list model versions',
      ),
    ],
  };
};

const describeModel: SlotRule = (i) => {
  const mv = findModelVersion(i.text, i.known);
  if ('ok' in mv)
    return {
      steps: [step('describe_model', { modelVersion: mv.ok.id }, `show model version ${label(mv.ok)}`)],
    };
  if ('unknown' in mv) return unknownModel(mv.unknown, i.known);
  return listModels(i);
};

const compare: SlotRule = (i) => {
  const versions = findModelVersions(i.text, i.known);
  if ('unknown' in versions) return unknownModel(versions.unknown, i.known);
  if (versions.ok.length < 2)
    return {
      steps: [],
      clarify: `Which two model versions should I compare? Known: ${i.known.versions.map(label).join(', ') || 'none yet'}.`,
    };
  const [a, b] = versions.ok as [Known['versions'][number], Known['versions'][number]];
  return {
    steps: [
      step('compare_models', { a: a.id, b: b.id }, `compare ${label(a)} with ${label(b)} metric by metric`),
    ],
  };
};

const explain: SlotRule = (i) => {
  const job = findJob(i.text, i.known);
  if (job !== undefined)
    return { steps: [step('explain_run', { jobId: job.id }, `explain training run ${job.id}`)] };
  const rollout = findRollout(i.text, i.known);
  if (rollout !== undefined || /\brollouts?\b|\bdeployments?\b|배포/i.test(i.said)) {
    const r = rollout ?? latest(i.known.rollouts);
    if (r === undefined) return { steps: [], reply: 'There are no rollouts yet to explain.' };
    return { steps: [step('explain_rollout', { rolloutId: r.id }, `explain rollout ${r.id}`)] };
  }
  const mv = findModelVersion(i.text, i.known);
  if ('ok' in mv)
    return { steps: [step('explain_model', { modelVersion: mv.ok.id }, `explain model ${label(mv.ok)}`)] };
  if ('unknown' in mv) return unknownModel(mv.unknown, i.known);
  const last = latest(i.known.jobs);
  if (last !== undefined)
    return { steps: [step('explain_run', { jobId: last.id }, `explain the latest training run ${last.id}`)] };
  return {
    steps: [],
    clarify: 'What should I explain: a training run (job id), a model version (e.g. helmets@3) or a rollout?',
  };
};

const evaluate: SlotRule = (i) =>
  withVersion(i, 'evaluate', (v) => {
    const split = /\bval(?:idation)?\b|검증\s*셋|검증\s*데이터/i.test(i.text)
      ? 'val'
      : /\btrain(?:ing)?\s+split\b|학습\s*셋/i.test(i.text)
        ? 'train'
        : 'test';
    const args: Record<string, unknown> = { modelVersion: v.id, split };
    const ds = findDataset(i.text, i.known);
    if ('ok' in ds) args.dataset = ds.ok;
    return { steps: [step('evaluate_model', args, `evaluate ${label(v)} on the ${split} split`)] };
  });

const promote: SlotRule = (i) =>
  withVersion(i, 'promote', (v) => {
    // The stage is the destination: read it after the version ("promote the candidate to production").
    const after = i.text.slice(Math.max(0, i.text.toLowerCase().indexOf(v.model.toLowerCase())));
    const stage =
      findStage(after.replace(/\b(?:the\s+)?candidate\s+(?:model|version)\b|\bthe candidate\b/gi, ' ')) ??
      'production';
    return {
      steps: [step('promote_model', { modelVersion: v.id, stage }, `promote ${label(v)} to ${stage}`)],
    };
  });

const importDataset: SlotRule = (i) => {
  const source = /((?:\/|\.\/|~\/|storage:)[^\s"']+)/.exec(i.text)?.[1];
  if (source === undefined)
    return {
      steps: [],
      clarify:
        "From which folder, zip or storage prefix should I import? Give a folder or .zip under the server's import folders (IMPORT_ROOTS), or storage:<prefix> for files in this project's storage.",
    };
  const name =
    /\b(?:as|named|name)\s+["']?([a-z0-9][\w.-]*)/i.exec(i.text)?.[1] ??
    /([a-z0-9][\w.-]*)\s*(?:이라는|라는)?\s*이름/i.exec(i.text)?.[1];
  if (name === undefined)
    return { steps: [], clarify: 'What name should the imported dataset get? Say "… as helmets-v3".' };
  const format = /\bcoco\b/i.test(i.text)
    ? 'coco'
    : /\bvoc\b/i.test(i.text)
      ? 'voc'
      : /\byolo\b/i.test(i.text)
        ? 'yolo'
        : undefined;
  return {
    steps: [
      step(
        'import_dataset',
        { source, name, ...(format ? { format } : {}) },
        `import ${source} as dataset ${name}`,
      ),
    ],
  };
};

const exportDataset: SlotRule = (i) =>
  withDataset(i, 'export', (dataset) => {
    const format = /\bcoco\b/i.test(i.text) ? 'coco' : 'yolo';
    return {
      steps: [
        step('export_dataset', { dataset, format }, `export ${dataset} in ${format.toUpperCase()} format`),
      ],
    };
  });

const splitDataset: SlotRule = (i) =>
  withDataset(i, 'split', (dataset) => {
    const ratio = /(\d{1,2})\s*\/\s*(\d{1,2})\s*\/\s*(\d{1,2})/.exec(i.text);
    const [tr, va, te] = ratio
      ? [Number(ratio[1]) / 100, Number(ratio[2]) / 100, Number(ratio[3]) / 100]
      : [0.8, 0.1, 0.1];
    return {
      steps: [
        step(
          'split_dataset',
          { dataset, train: tr, val: va, test: te },
          `re-split ${dataset} ${Math.round(tr * 100)}/${Math.round(va * 100)}/${Math.round(te * 100)}`,
        ),
      ],
    };
  });

const feedbackSummary: SlotRule = () => ({
  steps: [step('feedback_summary', { days: 7 }, 'summarise feedback from devices over the last week')],
});
const feedbackToDataset: SlotRule = (i) =>
  withDataset(i, 'add the accepted feedback to', (dataset) => ({
    steps: [
      step(
        'feedback_to_dataset',
        { dataset },
        `add accepted feedback samples to ${dataset} as a new version`,
      ),
    ],
  }));

const queryAudit: SlotRule = () => ({
  steps: [step('query_audit', { limit: 50 }, 'show recent audit entries')],
});
const verifyAudit: SlotRule = () => ({
  steps: [step('verify_audit', {}, 'verify the audit log hash chain')],
});
const listApprovals: SlotRule = () => ({
  steps: [step('list_approvals', { status: 'pending' }, 'show approvals waiting for a decision')],
});

const search: SlotRule = (i) => {
  const query = i.text
    .replace(/\b(?:search|find|look|for|please|the|me|anything|about)\b/gi, ' ')
    .replace(/검색해\s*줘|검색|찾아\s*줘|찾아/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (query === '') return { steps: [], clarify: 'What should I search for?' };
  return { steps: [step('search_platform', { text: query }, `search everything for "${query}"`)] };
};

const listDevices: SlotRule = (i) => {
  const device = findDevice(i.text, i.known);
  if (device !== undefined)
    return { steps: [step('describe_device', { device: device.id }, `show device ${device.name}`)] };
  const target = findTarget(i.text, i.known);
  if ('ok' in target && 'tag' in target.ok)
    return {
      steps: [
        step(
          'list_devices',
          { tag: target.ok.tag },
          `list devices tagged ${target.ok.tag} with the model each runs`,
        ),
      ],
    };
  if ('unknown' in target) return targetProblem(target, i);
  return { steps: [step('list_devices', {}, 'list every device')] };
};

/** The slot rule of every intent of the corpus: adding an intent is corpus lines plus one entry here. */
export const SLOT_RULES: Record<string, SlotRule> = {
  train,
  deploy,
  rollback,
  pause,
  resume,
  cancel_training: cancelTraining,
  training_status: trainingStatus,
  training_metrics: trainingMetrics,
  training_logs: trainingLogs,
  list_training_jobs: listTrainingJobs,
  rollout_status: rolloutStatus,
  list_datasets: listDatasets,
  describe_dataset: describeDataset,
  list_models: listModels,
  describe_model: describeModel,
  compare,
  explain,
  evaluate,
  promote,
  import_dataset: importDataset,
  export_dataset: exportDataset,
  split_dataset: splitDataset,
  feedback_summary: feedbackSummary,
  feedback_to_dataset: feedbackToDataset,
  query_audit: queryAudit,
  verify_audit: verifyAudit,
  list_approvals: listApprovals,
  search,
  list_devices: listDevices,
  describe_device: listDevices,
};

/** What a question about a change reads instead: a question never plans a change. */
export const READ_INSTEAD: Record<string, string> = {
  train: 'training_status',
  cancel_training: 'training_status',
  deploy: 'list_devices',
  rollback: 'rollout_status',
  pause: 'rollout_status',
  resume: 'rollout_status',
  promote: 'describe_model',
  evaluate: 'describe_model',
  import_dataset: 'list_datasets',
  export_dataset: 'describe_dataset',
  split_dataset: 'describe_dataset',
  feedback_to_dataset: 'feedback_summary',
};

/** How an intent reads to a person, for "did you mean" choices. */
export const INTENT_LABEL: Record<string, string> = {
  train: 'train a model',
  deploy: 'deploy a model',
  rollback: 'roll back a rollout',
  pause: 'pause a rollout',
  resume: 'resume a rollout',
  cancel_training: 'cancel a training job',
  training_status: 'show training status',
  training_metrics: 'show training metrics',
  training_logs: 'show training logs',
  list_training_jobs: 'list training jobs',
  rollout_status: 'show rollout status',
  list_datasets: 'list datasets',
  describe_dataset: 'show a dataset',
  list_models: 'list models',
  describe_model: 'show a model version',
  compare: 'compare two model versions',
  explain: 'explain a run, model or rollout',
  evaluate: 'evaluate a model version',
  promote: 'promote a model version',
  import_dataset: 'import a dataset',
  export_dataset: 'export a dataset',
  split_dataset: 're-split a dataset',
  feedback_summary: 'summarise device feedback',
  feedback_to_dataset: 'add feedback to a dataset',
  query_audit: 'show the audit log',
  verify_audit: 'verify the audit log',
  list_approvals: 'list pending approvals',
  search: 'search',
  list_devices: 'list devices',
  describe_device: 'show a device',
};
