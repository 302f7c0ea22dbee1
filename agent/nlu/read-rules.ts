import {
  findDataset,
  findDevice,
  findJob,
  findJobStatus,
  findModelVersion,
  findModelVersions,
  findRollout,
  findStage,
  findTarget,
  label,
  latest,
  mentions,
  type Known,
} from './slots.js';
import {
  type SlotRule,
  step,
  unknownDataset,
  unknownModel,
  targetProblem,
  pickRollout,
  jobOr,
} from './slot-kit.js';
import { findLines, findPeriodHours } from './amounts.js';

const rolloutStatus: SlotRule = (i) => {
  const p = pickRollout(i, () => true);
  if (p.problem) return p.problem;
  if (p.rollout === undefined) return { steps: [], reply: 'There are no rollouts yet.' };
  return {
    steps: [step('rollout_status', { rolloutId: p.rollout.id }, `show the state of rollout ${p.rollout.id}`)],
  };
};

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
    steps: [
      step('training_logs', { jobId, lines: findLines(i.text) ?? 50 }, `show the last log lines of ${jobId}`),
    ],
  }));

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
  const name = [...new Set(i.known.versions.map((v) => v.model))].find((n) => mentions(i.text, n));
  const args = { ...(name ? { name } : {}), ...(stage ? { stage } : {}) };
  return {
    steps: [
      step(
        'list_models',
        args,
        `list ${stage ? `${stage} ` : ''}versions${name ? ` of ${name}` : ''}`.replace(
          /^list versions$/,
          'list model versions',
        ),
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
  if (rollout !== undefined || /\brollouts?\b|\bdeployments?\b|배포|롤아웃/i.test(i.said)) {
    const picked = pickRollout(i, () => true);
    if (picked.problem !== undefined) return picked.problem;
    const r = rollout ?? picked.rollout;
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

const feedbackSummary: SlotRule = (i) => {
  const hours = findPeriodHours(i.text);
  const days = hours === undefined ? 7 : Math.min(90, Math.max(1, Math.round(hours / 24)));
  return {
    steps: [step('feedback_summary', { days }, `summarise feedback from devices over the last ${days} days`)],
  };
};

const queryAudit: SlotRule = (i) => {
  const sinceHours = findPeriodHours(i.text);
  return {
    steps: [
      step(
        'query_audit',
        { limit: 50, ...(sinceHours !== undefined ? { sinceHours } : {}) },
        sinceHours !== undefined
          ? `show audit entries of the last ${sinceHours} hours`
          : 'show recent audit entries',
      ),
    ],
  };
};

const verifyAudit: SlotRule = () => ({
  steps: [step('verify_audit', {}, 'verify the audit log hash chain')],
});

const listApprovals: SlotRule = () => ({
  steps: [step('list_approvals', { status: 'pending' }, 'show approvals waiting for a decision')],
});

const search: SlotRule = (i) => {
  const query = i.text
    .replace(
      /\b(?:search|find|look|up|for|please|the|me|anything|everything|all|about|platform|stuff|related|to)\b/gi,
      ' ',
    )
    .replace(
      /검색해\s*줘|검색|찾아\s*줘|찾아|관련(?:된|한)?\s*(?:거|것|자료|내용)?|(?:에\s*)?대한\s*(?:거|것)?|좀/g,
      ' ',
    )
    .replace(/\s+/g, ' ')
    .trim();
  if (query === '') return { steps: [], clarify: 'What should I search for?' };
  return { steps: [step('search_platform', { text: query }, `search everything for "${query}"`)] };
};

/** "find datasets with rust in them", "rust 클래스 있는 데이터셋 찾아줘": datasets by name, description or class. */
const searchDatasets: SlotRule = (i) => {
  const query = i.text
    .replace(
      /\b(?:search|find|look|for|please|the|me|any|all|datasets?|data|with|which|that|have|has|contain(?:s|ing)?|in|them|it|class(?:es)?|labell?ed|labels?|about)\b/gi,
      ' ',
    )
    .replace(
      /데이터\s*셋|데이터|클래스|라벨|레이블|있는|들어\s*있는|포함(?:된|한)?|찾아\s*줘|찾아|검색해\s*줘|검색|어떤|뭐|좀|[?]/g,
      ' ',
    )
    .replace(/\s+/g, ' ')
    .trim();
  if (query === '')
    return {
      steps: [],
      clarify: 'Which datasets should I look for (a class, a word of the name or description)?',
    };
  return { steps: [step('search_datasets', { text: query }, `search the datasets for "${query}"`)] };
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

/** The slot rules of intents that only read. */
export const READ_RULES = {
  rolloutStatus,
  trainingStatus,
  trainingMetrics,
  trainingLogs,
  listTrainingJobs,
  listDatasets,
  describeDataset,
  listModels,
  describeModel,
  compare,
  explain,
  feedbackSummary,
  queryAudit,
  verifyAudit,
  listApprovals,
  search,
  searchDatasets,
  listDevices,
};
