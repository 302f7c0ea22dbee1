import type { CallContext } from '../core/context.js';
import type { Plan, PlanStep } from './plan.js';
import type { CatalogDevice, CatalogJob, CatalogModelVersion, CatalogRollout, PlanInput, Planner, PlatformCatalog, ReplanInput } from './planner.js';

/** What the platform holds, loaded once per plan. */
interface Known {
  datasets: string[];
  versions: CatalogModelVersion[];
  devices: CatalogDevice[];
  tags: string[];
  jobs: CatalogJob[];
  rollouts: CatalogRollout[];
}

type Found<T> = { ok: T } | { unknown: string } | { ambiguous: string[] } | { missing: true };
type Target = { tag: string } | { devices: string[] };

const has = (re: RegExp, text: string) => re.test(text);

const RE = {
  explain: /\bexplain\b|\bwhy did\b|설명/i,
  compare: /\bcompare\b|\bvs\.?\s|\bversus\b|비교/i,
  status: /\bstatus\b|\bprogress\b|\bhow(?:'s| is| are)\b|상태|진행/i,
  metrics: /\bmetrics?\b|\bmap\b|\bloss\b|지표|성능/i,
  logs: /\blogs?\b|로그/i,
  train: /\b(?:re)?train\b|\bfine-?tune\b|학습|훈련/i,
  deploy: /\bdeploy\b|\broll\s?out\b|\broll (?:it|them) out\b|\bship\b|배포/i,
  rollback: /\broll\s?-?back\b|\brevert\b|롤백|되돌/i,
  pause: /\bpause\b|일시\s*정지/i,
  resume: /\bresume\b|\bcontinue the rollout\b|재개/i,
  cancel: /\b(?:cancel|stop|abort|kill)\b|취소|중단/i,
  evaluate: /\bevaluate\b|\beval\b|평가/i,
  promote: /\bpromote\b|승격/i,
  importDs: /\bimport\b|가져와|가져오|임포트/i,
  exportDs: /\bexport\b|내보내/i,
  split: /\b(?:re-?)?split\b|분할/i,
  feedback: /\bfeedback\b|피드백/i,
  audit: /\baudit\b|\bwho approved\b|감사|누가 승인/i,
  verify: /\bverify\b|\bcheck the chain\b|검증/i,
  approvals: /\bapprovals?\b|\bpending\b|승인/i,
  search: /\bsearch\b|\bfind\b|\blook for\b|검색|찾아/i,
  datasets: /\bdatasets?\b|데이터\s*셋/i,
  models: /\bmodels?\b|모델/i,
  devices: /\bdevices?\b|\bjetsons?\b|\bfleet\b|장비|디바이스|기기|젯슨/i,
  jobs: /\bjobs?\b|\bruns?\b|\btrainings?\b|학습\s*목록|작업/i,
  rollouts: /\brollouts?\b|\bdeployments?\b|배포/i,
  allLines: /\ball (?:the )?lines\b|\bevery line\b|\ball devices\b|\beverywhere\b|모든\s*라인|전체\s*라인|모든\s*장비|전체\s*장비/i,
  stopOnly: /^\s*(?:no|nope|stop|cancel|don'?t|do not|never mind|abort)\b|^\s*(?:아니|중지|취소|그만|하지\s*마)/i,
};

/**
 * The planner used when no LLM is configured: patterns for the common requests in English and
 * Korean, every name checked against the platform. An unknown name gets an answer listing the
 * known ones; an ambiguous target gets a question, never a guess.
 */
export class RulesPlanner implements Planner {
  readonly kind = 'rules' as const;

  async plan({ message, ctx, catalog }: PlanInput): Promise<Plan> {
    const known = await load(catalog, ctx);
    return planFor(message, known);
  }

  async replan({ ctx, catalog, plan, rejection }: ReplanInput): Promise<Plan> {
    const reason = rejection.reason.trim();
    if (reason === '' || RE.stopOnly.test(reason)) return { steps: [], reply: `Stopped: step ${rejection.index + 1} (${rejection.tool}) was rejected${reason ? `: "${reason}"` : ''}.` };
    const known = await load(catalog, ctx);
    const remaining = plan.steps.slice(rejection.index + 1);
    // A reason that changes an argument of the rejected step ("use 10 epochs", "line 2 instead") retries that step changed.
    const changed = adjust(rejection.tool, rejection.args, reason, known);
    if ('clarify' in changed || 'reply' in changed) return { steps: [], ...changed };
    if (changed.args !== undefined) {
      return {
        steps: [{ tool: rejection.tool, args: changed.args, reason: `${plan.steps[rejection.index]?.reason ?? rejection.tool} (changed as asked: ${reason})` }, ...remaining],
      };
    }
    // Otherwise the reason may be a new request of its own.
    const fresh = planFor(reason, known, { modelVersion: rejection.args.modelVersion });
    if (fresh.steps.length > 0) return fresh;
    return { steps: [], reply: `Stopped: step ${rejection.index + 1} (${rejection.tool}) was rejected: "${reason}".` };
  }
}

async function load(catalog: PlatformCatalog, ctx: CallContext): Promise<Known> {
  const [datasets, versions, devices, jobs, rollouts] = await Promise.all([
    catalog.datasets(ctx),
    catalog.modelVersions(ctx),
    catalog.devices(ctx),
    catalog.jobs(ctx),
    catalog.rollouts(ctx),
  ]);
  const tags = [...new Set(devices.flatMap((d) => d.tags))].sort();
  return { datasets: datasets.map((d) => d.name), versions, devices, tags, jobs, rollouts };
}

/** Turns one message into a plan. `context` supplies what a rejected step already had. */
function planFor(message: string, known: Known, context: { modelVersion?: unknown } = {}): Plan {
  const text = message.trim();
  // Intents are read from the text with every known name masked ("ship-hulls" is not "ship"); the finders read the original.
  const said = maskNames(text, known);
  const step = (tool: string, args: Record<string, unknown>, reason: string): PlanStep => ({ tool, args, reason });

  if (has(RE.explain, said)) {
    const job = findJob(text, known);
    if (job !== undefined && !has(RE.rollouts, said)) return { steps: [step('explain_run', { jobId: job.id }, `explain training run ${job.id}`)] };
    const rollout = findRollout(text, known);
    if (rollout !== undefined || has(RE.rollouts, said)) {
      const r = rollout ?? latest(known.rollouts);
      if (r === undefined) return { steps: [], reply: 'There are no rollouts yet to explain.' };
      return { steps: [step('explain_rollout', { rolloutId: r.id }, `explain rollout ${r.id}`)] };
    }
    const mv = findModelVersion(text, known);
    if ('ok' in mv) return { steps: [step('explain_model', { modelVersion: mv.ok.id }, `explain model ${label(mv.ok)}`)] };
    if ('unknown' in mv) return unknownModel(mv.unknown, known);
    const last = latest(known.jobs);
    if (last !== undefined && has(/\brun\b|\btraining\b|학습/i, said)) return { steps: [step('explain_run', { jobId: last.id }, `explain the latest training run ${last.id}`)] };
    return { steps: [], clarify: 'What should I explain: a training run (job id), a model version (e.g. helmets@3) or a rollout?' };
  }

  if (has(RE.compare, said)) {
    const versions = findModelVersions(text, known);
    if ('unknown' in versions) return unknownModel(versions.unknown, known);
    if (versions.ok.length < 2) return { steps: [], clarify: `Which two model versions should I compare? Known: ${known.versions.map(label).join(', ') || 'none yet'}.` };
    const [a, b] = versions.ok as [CatalogModelVersion, CatalogModelVersion];
    return { steps: [step('compare_models', { a: a.id, b: b.id }, `compare ${label(a)} with ${label(b)} metric by metric`)] };
  }

  if (has(RE.status, said) || (has(RE.metrics, said) && !has(RE.train, said)) || (has(RE.logs, said) && !has(RE.audit, said))) {
    const rollout = findRollout(text, known);
    const job = findJob(text, known);
    if (rollout !== undefined || (job === undefined && has(RE.rollouts, said))) {
      const r = rollout ?? latest(known.rollouts);
      if (r === undefined) return { steps: [], reply: 'There are no rollouts yet.' };
      return { steps: [step('rollout_status', { rolloutId: r.id }, `show the state of rollout ${r.id}`)] };
    }
    const j = job ?? latest(known.jobs);
    if (j === undefined) return { steps: [], reply: 'There are no training jobs yet; start one with "train … on dataset …".' };
    if (has(RE.logs, said)) return { steps: [step('training_logs', { jobId: j.id, lines: 50 }, `show the last log lines of ${j.id}`)] };
    if (has(RE.metrics, said)) return { steps: [step('training_metrics', { jobId: j.id }, `show the per-epoch metrics of ${j.id}`)] };
    return { steps: [step('training_status', { jobId: j.id }, `show the state of training job ${j.id}`)] };
  }

  if (has(RE.cancel, said) && (has(RE.jobs, said) || has(RE.train, said) || findJob(text, known) !== undefined)) {
    const j = findJob(text, known) ?? latest(known.jobs.filter((x) => ['queued', 'assigned', 'running'].includes(x.status)));
    if (j === undefined) return { steps: [], reply: 'No training job is running, so there is nothing to cancel.' };
    return { steps: [step('cancel_training', { jobId: j.id }, `cancel training job ${j.id} as asked`)] };
  }

  if (has(RE.train, said)) {
    const ds = findDataset(text, known);
    if ('missing' in ds) return { steps: [], clarify: `Which dataset should I train on? Known datasets: ${known.datasets.join(', ') || 'none yet'}.` };
    if ('unknown' in ds) return unknownDataset(ds.unknown, known);
    if ('ambiguous' in ds) return { steps: [], clarify: `Which dataset do you mean: ${ds.ambiguous.join(' or ')}?` };
    const args: Record<string, unknown> = { dataset: ds.ok };
    const epochs = findEpochs(text);
    if (epochs !== undefined) args.epochs = epochs;
    const steps = [step('start_training', args, `train a detector on ${ds.ok}${epochs ? ` for ${epochs} epochs` : ''} as asked`)];
    if (has(RE.deploy, said)) {
      const target = findTarget(text, known);
      if (!('ok' in target)) return targetProblem(target, known);
      steps.push(step('start_rollout', { modelVersion: '$steps.0.result.modelVersionId', target: target.ok }, `deploy the trained model to ${describeTarget(target.ok)} (canary first)`));
    }
    return { steps };
  }

  if (has(RE.rollback, said)) {
    const rollout = findRollout(text, known);
    if (rollout !== undefined) return { steps: [step('rollback_rollout', { rolloutId: rollout.id }, `roll back rollout ${rollout.id} as asked`)] };
    const target = findTarget(text, known);
    if (!('ok' in target)) return targetProblem(target, known);
    const t = target.ok;
    const candidates = known.rollouts.filter((r) => ('tag' in t ? r.target === t.tag : t.devices.includes(r.target)) && r.status !== 'rolled_back');
    const r = latest(candidates);
    if (r === undefined) return { steps: [], reply: `There is no rollout on ${describeTarget(t)} to roll back.` };
    return { steps: [step('rollback_rollout', { rolloutId: r.id }, `roll back the latest rollout on ${describeTarget(t)} (${r.id})`)] };
  }

  if (has(RE.pause, said) || (has(RE.resume, said) && has(RE.rollouts, said))) {
    const tool = has(RE.pause, said) ? 'pause_rollout' : 'resume_rollout';
    const r = findRollout(text, known) ?? latest(known.rollouts.filter((x) => (tool === 'pause_rollout' ? !['completed', 'rolled_back', 'failed', 'paused'].includes(x.status) : x.status === 'paused')));
    if (r === undefined) return { steps: [], reply: `There is no rollout to ${tool === 'pause_rollout' ? 'pause' : 'resume'}.` };
    return { steps: [step(tool, { rolloutId: r.id }, `${tool === 'pause_rollout' ? 'pause' : 'resume'} rollout ${r.id} as asked`)] };
  }

  if (has(RE.deploy, said) && !has(/\b(?:list|show)\b|목록|보여/i, said)) {
    const target = findTarget(text, known);
    const mv = findModelVersion(text, known);
    let version: string | undefined;
    let versionLabel = '';
    if ('ok' in mv) {
      version = mv.ok.id;
      versionLabel = label(mv.ok);
    } else if ('unknown' in mv) return unknownModel(mv.unknown, known);
    else if (typeof context.modelVersion === 'string') {
      version = context.modelVersion;
      versionLabel = context.modelVersion;
    } else {
      const names = [...new Set(known.versions.map((v) => v.model))];
      if (names.length !== 1) return { steps: [], clarify: `Which model version should I deploy? Known: ${known.versions.map(label).join(', ') || 'none yet'}.` };
      const newest = latest(known.versions)!;
      version = newest.id;
      versionLabel = `${label(newest)} (the latest)`;
    }
    if (!('ok' in target)) return targetProblem(target, known);
    return { steps: [step('start_rollout', { modelVersion: version, target: target.ok }, `deploy ${versionLabel} to ${describeTarget(target.ok)} (canary first)`)] };
  }

  if (has(RE.evaluate, said)) {
    const mv = findModelVersion(text, known);
    if ('unknown' in mv) return unknownModel(mv.unknown, known);
    if (!('ok' in mv)) return { steps: [], clarify: `Which model version should I evaluate? Known: ${known.versions.map(label).join(', ') || 'none yet'}.` };
    const split = /\bval(?:idation)?\b|검증\s*셋/i.test(said) ? 'val' : /\btrain(?:ing)? split\b/i.test(said) ? 'train' : 'test';
    const args: Record<string, unknown> = { modelVersion: mv.ok.id, split };
    const ds = findDataset(text, known);
    if ('ok' in ds) args.dataset = ds.ok;
    return { steps: [step('evaluate_model', args, `evaluate ${label(mv.ok)} on the ${split} split`)] };
  }

  if (has(RE.promote, said)) {
    const mv = findModelVersion(text, known);
    if ('unknown' in mv) return unknownModel(mv.unknown, known);
    if (!('ok' in mv)) return { steps: [], clarify: `Which model version should I promote? Known: ${known.versions.map(label).join(', ') || 'none yet'}.` };
    const stage = /\bstaging\b|스테이징/i.test(said) ? 'staging' : /\bcandidate\b|후보/i.test(said) ? 'candidate' : 'production';
    return { steps: [step('promote_model', { modelVersion: mv.ok.id, stage }, `promote ${label(mv.ok)} to ${stage}`)] };
  }

  if (has(RE.importDs, said)) {
    const source = /((?:\/|\.\/|~\/|storage:)[^\s"']+)/.exec(text)?.[1];
    if (source === undefined)
      return { steps: [], clarify: "From which folder, zip or storage prefix should I import? Give a folder or .zip under the server's import folders (IMPORT_ROOTS), or storage:<prefix> for files in this project's storage." };
    const name = /\b(?:as|named|name)\s+["']?([a-z0-9][\w.-]*)/i.exec(text)?.[1] ?? /([a-z0-9][\w.-]*)\s*(?:이라는|라는)?\s*이름/i.exec(text)?.[1];
    if (name === undefined) return { steps: [], clarify: 'What name should the imported dataset get? Say "… as helmets-v3".' };
    const format = /\bcoco\b/i.test(said) ? 'coco' : /\bvoc\b/i.test(said) ? 'voc' : /\byolo\b/i.test(said) ? 'yolo' : undefined;
    return { steps: [step('import_dataset', { source, name, ...(format ? { format } : {}) }, `import ${source} as dataset ${name}`)] };
  }

  if (has(RE.exportDs, said)) {
    const ds = findDataset(text, known);
    if (!('ok' in ds)) return 'unknown' in ds ? unknownDataset(ds.unknown, known) : { steps: [], clarify: `Which dataset should I export? Known datasets: ${known.datasets.join(', ')}.` };
    const format = /\bcoco\b/i.test(said) ? 'coco' : 'yolo';
    return { steps: [step('export_dataset', { dataset: ds.ok, format }, `export ${ds.ok} in ${format.toUpperCase()} format`)] };
  }

  if (has(RE.split, said)) {
    const ds = findDataset(text, known);
    if (!('ok' in ds)) return 'unknown' in ds ? unknownDataset(ds.unknown, known) : { steps: [], clarify: `Which dataset should I split? Known datasets: ${known.datasets.join(', ')}.` };
    const ratio = /(\d{1,2})\s*\/\s*(\d{1,2})\s*\/\s*(\d{1,2})/.exec(said);
    const [train, val, test] = ratio ? [Number(ratio[1]) / 100, Number(ratio[2]) / 100, Number(ratio[3]) / 100] : [0.8, 0.1, 0.1];
    return { steps: [step('split_dataset', { dataset: ds.ok, train, val, test }, `re-split ${ds.ok} ${Math.round(train * 100)}/${Math.round(val * 100)}/${Math.round(test * 100)}`)] };
  }

  if (has(RE.feedback, said)) {
    if (/\b(?:into|to|as) (?:a )?(?:new )?dataset\b|데이터\s*셋으로|데이터\s*셋에/i.test(said)) {
      const ds = findDataset(text, known);
      if (!('ok' in ds)) return 'unknown' in ds ? unknownDataset(ds.unknown, known) : { steps: [], clarify: `Which dataset should the accepted feedback join? Known datasets: ${known.datasets.join(', ')}.` };
      return { steps: [step('feedback_to_dataset', { dataset: ds.ok }, `add accepted feedback samples to ${ds.ok} as a new version`)] };
    }
    return { steps: [step('feedback_summary', { days: 7 }, 'summarise feedback from devices over the last week')] };
  }

  if (has(RE.audit, said)) {
    if (has(RE.verify, said)) return { steps: [step('verify_audit', {}, 'verify the audit log hash chain')] };
    return { steps: [step('query_audit', { limit: 50 }, 'show recent audit entries')] };
  }

  if (has(RE.approvals, said) && !has(RE.deploy, said)) return { steps: [step('list_approvals', { status: 'pending' }, 'show approvals waiting for a decision')] };

  if (has(RE.search, said)) {
    const query = text
      .replace(/\b(?:search|find|look|for|please|the|me)\b/gi, ' ')
      .replace(/검색해\s*줘|검색|찾아\s*줘|찾아/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    if (query === '') return { steps: [], clarify: 'What should I search for?' };
    return { steps: [step('search_platform', { text: query }, `search everything for "${query}"`)] };
  }

  if (has(RE.devices, said)) {
    const device = known.devices.find((d) => mentions(text, d.id) || mentions(text, d.name));
    if (device !== undefined) return { steps: [step('describe_device', { device: device.id }, `show device ${device.name}`)] };
    const target = findTarget(text, known);
    if ('ok' in target && 'tag' in target.ok) return { steps: [step('list_devices', { tag: target.ok.tag }, `list devices tagged ${target.ok.tag}`)] };
    if ('unknown' in target) return targetProblem(target, known);
    return { steps: [step('list_devices', {}, 'list every device')] };
  }

  if (has(RE.datasets, said)) {
    const ds = findDataset(text, known);
    if ('ok' in ds) return { steps: [step('describe_dataset', { dataset: ds.ok }, `show dataset ${ds.ok}`)] };
    if ('unknown' in ds) return unknownDataset(ds.unknown, known);
    return { steps: [step('list_datasets', {}, 'list the datasets')] };
  }

  if (has(RE.models, said)) {
    const mv = findModelVersion(text, known);
    if ('ok' in mv) return { steps: [step('describe_model', { modelVersion: mv.ok.id }, `show model version ${label(mv.ok)}`)] };
    if ('unknown' in mv) return unknownModel(mv.unknown, known);
    return { steps: [step('list_models', {}, 'list model versions')] };
  }

  if (has(RE.jobs, said)) return { steps: [step('list_training_jobs', {}, 'list training jobs')] };

  // A bare dataset or device name is a request to see it.
  const ds = findDataset(text, known);
  if ('ok' in ds) return { steps: [step('describe_dataset', { dataset: ds.ok }, `show dataset ${ds.ok}`)] };
  const device = known.devices.find((d) => mentions(text, d.id) || mentions(text, d.name));
  if (device !== undefined) return { steps: [step('describe_device', { device: device.id }, `show device ${device.name}`)] };

  return {
    steps: [],
    reply:
      'I can train ("train a detector on dataset helmets-v2 for 20 epochs"), deploy ("deploy helmets@3 to line 3"), roll back ("roll back line 3"), ' +
      'report status ("status of the training"), list or search (datasets, models, devices), compare ("compare helmets@2 and helmets@3") and explain runs, models and rollouts. ' +
      'Korean works too ("helmets-v2 데이터셋으로 학습하고 3번 라인에 배포해줘").',
  };
}

const IDENTIFIER = /[^\p{L}]/u;
const MASK = ' \u2063 ';

/**
 * The text with the names it mentions masked, so that words inside them never read as intents:
 * known datasets, model names and versions, device tags, ids and names, job and rollout ids, and
 * the token named as a dataset ("dataset ship-hulls", "the ship-hulls dataset"). Only names that
 * look like identifiers (a digit, `-`, `_`, `.` or `@` in them) are masked: a plain word such as the
 * tag "jetson" may be the person's own word.
 */
export function maskNames(text: string, known: Pick<Known, 'datasets' | 'versions' | 'devices' | 'tags' | 'jobs' | 'rollouts'>): string {
  const names = new Set<string>([
    ...known.datasets,
    ...known.versions.flatMap((v) => [v.model, v.id]),
    ...known.tags,
    ...known.devices.flatMap((d) => [d.id, d.name]),
    ...known.jobs.map((j) => j.id),
    ...known.rollouts.map((r) => r.id),
  ]);
  let out = text;
  for (const name of [...names].filter((n) => n !== '' && IDENTIFIER.test(n)).sort((a, b) => b.length - a.length)) {
    out = out.replace(new RegExp(`(?<![\\w@.-])${escape(name)}(?:@[\\w-]+)?(?![\\w-])`, 'gi'), MASK);
  }
  // Any model reference (name@N, name@production…) is a name too, known or not.
  out = out.replace(/(?<![\w@.-])[A-Za-z][\w.-]*@(?:\d+|latest|candidate|staging|production)(?![\w-])/gi, MASK);
  const token = `["'“”]?([A-Za-z0-9][\\w.@-]*)["'“”]?`;
  const maskToken = (m: string, name: string) => (IDENTIFIER.test(name) ? m.replace(name, MASK) : m);
  out = out
    .replace(new RegExp(`\\bdata\\s?sets?\\s+(?:called\\s+|named\\s+)?${token}`, 'gi'), maskToken)
    .replace(new RegExp(`${token}\\s+data\\s?set\\b`, 'gi'), maskToken)
    .replace(new RegExp(`${token}\\s*데이터\\s*셋`, 'g'), maskToken)
    .replace(new RegExp(`데이터\\s*셋\\s+${token}`, 'g'), maskToken);
  return out;
}

/** Adjusts the rejected step's arguments from the rejection reason, when it names a change. */
function adjust(tool: string, args: Record<string, unknown>, reason: string, known: Known): { args?: Record<string, unknown> } | { clarify: string; steps?: never } | { reply: string } {
  if (tool === 'start_training') {
    const epochs = findEpochs(reason);
    const ds = findDataset(reason, known);
    if ('unknown' in ds) return { reply: unknownDataset(ds.unknown, known).reply! };
    if (epochs === undefined && !('ok' in ds)) return {};
    return { args: { ...args, ...(epochs !== undefined ? { epochs } : {}), ...('ok' in ds ? { dataset: ds.ok } : {}) } };
  }
  if (tool === 'start_rollout' || tool === 'plan_rollout') {
    const target = findTarget(reason, known);
    if ('ok' in target) return { args: { ...args, target: target.ok } };
    if ('ambiguous' in target || 'unknown' in target) {
      const problem = targetProblem(target, known);
      return problem.clarify !== undefined ? { clarify: problem.clarify } : { reply: problem.reply ?? 'Stopped.' };
    }
  }
  return {};
}

function findDataset(text: string, known: Known): Found<string> {
  const token = '["\'“”]?([A-Za-z0-9][\\w.@-]*)["\'“”]?';
  const explicit =
    new RegExp(`\\bdata\\s?sets?\\s+(?:called\\s+|named\\s+)?${token}`, 'i').exec(text)?.[1] ??
    new RegExp(`${token}\\s+data\\s?set\\b`, 'i').exec(text)?.[1] ??
    new RegExp(`${token}\\s*데이터\\s*셋`).exec(text)?.[1] ??
    new RegExp(`데이터\\s*셋\\s+${token}`).exec(text)?.[1];
  const stop = new Set(['the', 'a', 'an', 'this', 'that', 'new', 'my', 'on', 'of', 'list', 'all', 'show', 'for', 'with', 'to', 'and', 'in', 'at', 'using', 'from', 'into', 'as', 'is']);
  if (explicit !== undefined && !stop.has(explicit.toLowerCase())) {
    const exact = known.datasets.find((d) => d.toLowerCase() === explicit.toLowerCase() || explicit.toLowerCase().startsWith(`${d.toLowerCase()}@`));
    return exact !== undefined ? { ok: explicit.includes('@') ? explicit : exact } : { unknown: explicit };
  }
  const loose =
    /\b(?:on|using|from|with)\s+(?:the\s+)?["'“”]?([A-Za-z][\w.@]*[-_\d][\w.@-]*)/i.exec(text)?.[1] ??
    /([A-Za-z][\w.@]*[-_\d][\w.@-]*)\s*(?:으로|로|에서)\s/.exec(`${text} `)?.[1];
  if (loose !== undefined && !known.datasets.some((d) => mentions(text, d)) && !/^line[-_]?\d/i.test(loose) && !/^(?:job|rol|mv|dev)_/.test(loose)) {
    return { unknown: loose };
  }
  const mentioned = known.datasets.filter((d) => mentions(text, d));
  if (mentioned.length === 1) return { ok: mentioned[0]! };
  if (mentioned.length > 1) {
    // "helmets-v2" also contains "helmets": the longest mention wins when it contains the others.
    const longest = mentioned.reduce((a, b) => (b.length > a.length ? b : a));
    if (mentioned.every((m) => longest.includes(m))) return { ok: longest };
    return { ambiguous: mentioned };
  }
  return { missing: true };
}

function findTarget(text: string, known: Known): Found<Target> {
  if (RE.allLines.test(text)) return { ambiguous: known.tags.filter((t) => /^line/i.test(t)) };
  const line = /\bline[\s-]?(\d+)\b/i.exec(text)?.[1] ?? /(\d+)\s*번\s*(?:라인|line)/i.exec(text)?.[1] ?? /라인\s*(\d+)/.exec(text)?.[1] ?? /(\d+)\s*라인/.exec(text)?.[1];
  if (line !== undefined) {
    const exact = known.tags.find((t) => t.toLowerCase() === `line-${line}`);
    if (exact !== undefined) return { ok: { tag: exact } };
    const close = known.tags.filter((t) => new RegExp(`^line-?${line}(?:$|[^0-9])`, 'i').test(t));
    if (close.length === 1) return { ok: { tag: close[0]! } };
    if (close.length > 1) return { ambiguous: close };
    return { unknown: `line-${line}` };
  }
  const tag = known.tags.filter((t) => mentions(text, t));
  if (tag.length === 1) return { ok: { tag: tag[0]! } };
  if (tag.length > 1) return { ambiguous: tag };
  const devices = known.devices.filter((d) => mentions(text, d.id) || mentions(text, d.name));
  if (devices.length > 0) return { ok: { devices: devices.map((d) => d.id) } };
  if (RE.devices.test(text)) return { ambiguous: known.tags };
  return { missing: true };
}

function findModelVersion(text: string, known: Known): Found<CatalogModelVersion> {
  const r = findModelVersions(text, known);
  if ('unknown' in r) return r;
  return r.ok.length > 0 ? { ok: r.ok[0]! } : { missing: true };
}

/** Every model version the text names, in order: ids, `name@N`, `name vN`, `name version N`, `name N버전`, or a bare model name (its latest). */
function findModelVersions(text: string, known: Known): { ok: CatalogModelVersion[] } | { unknown: string } {
  const found: Array<{ at: number; v: CatalogModelVersion }> = [];
  for (const v of known.versions) {
    const at = text.indexOf(v.id);
    if (at >= 0) found.push({ at, v });
  }
  const patterns = [/([A-Za-z][\w-]*?)@(\d+)/g, /([A-Za-z][\w-]*?)\s+v(?:ersion)?\s*(\d+)\b/gi, /([A-Za-z][\w-]*?)\s*(\d+)\s*버전/g];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const name = m[1]!;
      const version = Number(m[2]);
      const v = known.versions.find((x) => x.model.toLowerCase() === name.toLowerCase() && x.version === version);
      if (v === undefined) {
        if (known.versions.some((x) => x.model.toLowerCase() === name.toLowerCase()) || /@/.test(m[0])) return { unknown: `${name}@${version}` };
        continue;
      }
      if (!found.some((f) => f.v.id === v.id)) found.push({ at: m.index ?? 0, v });
    }
  }
  if (found.length === 0) {
    for (const name of new Set(known.versions.map((v) => v.model))) {
      const at = text.toLowerCase().search(new RegExp(`(?:^|[^\\w-])${escape(name.toLowerCase())}(?:$|[^\\w-])`));
      if (at >= 0) found.push({ at, v: latest(known.versions.filter((v) => v.model === name))! });
    }
  }
  return { ok: found.sort((a, b) => a.at - b.at).map((f) => f.v) };
}

function findJob(text: string, known: Known): CatalogJob | undefined {
  return known.jobs.find((j) => text.includes(j.id));
}

function findRollout(text: string, known: Known): CatalogRollout | undefined {
  return known.rollouts.find((r) => text.includes(r.id));
}

function findEpochs(text: string): number | undefined {
  const m = /(\d{1,4})\s*(?:epochs?|에폭|에포크|epoch)/i.exec(text) ?? /epochs?\s*(?:=|:)?\s*(\d{1,4})/i.exec(text);
  const n = m ? Number(m[1]) : undefined;
  return n !== undefined && n >= 1 && n <= 1000 ? n : undefined;
}

function mentions(text: string, name: string): boolean {
  return new RegExp(`(?:^|[^\\w@-])${escape(name)}(?:$|[^\\w-])`, 'i').test(text);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function latest<T extends { createdAt?: number; version?: number }>(items: T[]): T | undefined {
  return [...items].sort((a, b) => (b.createdAt ?? b.version ?? 0) - (a.createdAt ?? a.version ?? 0))[0];
}

function label(v: CatalogModelVersion): string {
  return `${v.model}@${v.version}`;
}

function describeTarget(t: Target): string {
  return 'tag' in t ? `devices tagged ${t.tag}` : `devices ${t.devices.join(', ')}`;
}

function unknownDataset(name: string, known: Known): Plan {
  return { steps: [], reply: `dataset "${name}" not found; known datasets: ${known.datasets.join(', ') || 'none yet (import one first)'}` };
}

function unknownModel(name: string, known: Known): Plan {
  return { steps: [], reply: `model version "${name}" not found; known versions: ${known.versions.map(label).join(', ') || 'none yet (train one first)'}` };
}

function targetProblem(target: Exclude<Found<Target>, { ok: Target }>, known: Known): Plan {
  if ('missing' in target) return { steps: [], clarify: `Where should I deploy it? Known device tags: ${known.tags.join(', ') || 'none'}.` };
  if ('unknown' in target) return { steps: [], reply: `no devices are tagged "${target.unknown}"; known device tags: ${known.tags.join(', ') || 'none'}` };
  return { steps: [], clarify: `Which target do you mean: ${target.ambiguous.join(', ') || 'no device tags are known'}? Name one line or device group; I will not deploy to several at once without it.` };
}
