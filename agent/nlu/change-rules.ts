import {
  describeTarget,
  findBackend,
  findBatch,
  findCanary,
  findDataset,
  findEpochs,
  findImageSize,
  findStartingPoint,
  findJob,
  findStage,
  findTarget,
  label,
  latest,
} from './slots.js';
import { type SlotRule, step, targetProblem, withDataset, withVersion, pickRollout } from './slot-kit.js';
import { deployment } from './loop-rules.js';
import { findMaxImages } from './amounts.js';

const DEPLOY_WORDS =
  /\bdeploy\w*|\broll\s?(?:it\s+|them\s+)?out\b|\bship\b|\bpush\b.*\bout\b|\brelease\b|배포|적용/i;
/** Verbs that deploy only when a target follows them: "push it to line 2", "put it on line 3", "3번 라인에 올려". */
const DEPLOY_TO_TARGET =
  /\b(?:push|put|send|install|load)\b(?:\s+(?:it|them|the\s+\w+))?\s+(?:to|on|onto)\s+\{target\}|\{target\}\s*(?:에|으로|로)?\s*(?:올려|깔아|내려|설치)/i;
const ACTIVE = ['pending', 'canary', 'waves', 'running'];

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
    if (DEPLOY_WORDS.test(i.said) || DEPLOY_TO_TARGET.test(i.said)) {
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
  const d = deployment(i, 'deploy');
  if ('problem' in d) return d.problem;
  const canary = findCanary(i.text);
  return {
    steps: [
      step(
        'start_rollout',
        { modelVersion: d.version, target: d.target, ...(canary ? { canary } : {}) },
        `deploy ${d.versionLabel} to ${describeTarget(d.target)} (canary first${canary ? ` on ${canary} devices` : ''})`,
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

const cancelTraining: SlotRule = (i) => {
  const j =
    findJob(i.text, i.known) ??
    latest(i.known.jobs.filter((x) => ['queued', 'assigned', 'running'].includes(x.status)));
  if (j === undefined)
    return { steps: [], reply: 'No training job is running, so there is nothing to cancel.' };
  return { steps: [step('cancel_training', { jobId: j.id }, `cancel training job ${j.id} as asked`)] };
};

const evaluate: SlotRule = (i) =>
  withVersion(i, 'evaluate', (v) => {
    const split = /\bval(?:idation)?\b|검증\s*(?:셋|세트|데이터|용|스플릿)|밸리데이션/i.test(i.text)
      ? 'val'
      : /\btrain(?:ing)?\s+split\b|학습\s*셋/i.test(i.text)
        ? 'train'
        : 'test';
    const args: Record<string, unknown> = { modelVersion: v.id, split };
    const ds = findDataset(i.text, i.known);
    if ('ok' in ds) args.dataset = ds.ok;
    const maxImages = findMaxImages(i.text);
    if (maxImages !== undefined) args.maxImages = maxImages;
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
  const source =
    /(?<![\w.-])((?:\/|\.\/|~\/|storage:)[^\s"']+)/.exec(i.text)?.[1] ??
    // a relative folder under the import roots ("incoming/line4-helmets"), never a URL or a ratio
    /(?<![\w:/.-])([a-z0-9_][\w.-]*\/[\w./-]*[\w-])(?![\w/])/i.exec(
      i.text.replace(/\b\d+\/\d+(?:\/\d+)?\b/g, ' '),
    )?.[1];
  if (source === undefined)
    return {
      steps: [],
      clarify:
        "From which folder, zip or storage prefix should I import? Give a folder or .zip under the server's import folders (IMPORT_ROOTS), or storage:<prefix> for files in this project's storage.",
    };
  const name =
    /\b(?:called|named|name(?:d\s+it)?)\s+["']?([a-z0-9][\w.-]*)/i.exec(i.text)?.[1] ??
    /\bas\s+(?:a\s+(?:new\s+)?dataset\s+(?:called|named)\s+)?["']?([a-z0-9][\w.-]*)/i.exec(i.text)?.[1] ??
    /([a-z0-9][\w.-]*)\s*(?:이라는|라는)?\s*(?:이름|데이터셋\s*(?:으로|로|이름))/i.exec(
      i.text.replace(source, ' '),
    )?.[1] ??
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

const PART = {
  train: '(?:train(?:ing)?|학습|훈련)',
  val: '(?:val(?:idation)?|검증|밸리데이션)',
  test: '(?:test(?:ing)?|테스트|시험)',
};

/** Split fractions: "70/20/10", or each part named ("train 70 val 20 test 10", "학습 70 검증 20 테스트 10", "70% train"). */
export function splitRatio(text: string): [number, number, number] | undefined {
  const ratio = /(\d{1,2})\s*\/\s*(\d{1,2})\s*\/\s*(\d{1,2})/.exec(text);
  if (ratio) return [Number(ratio[1]) / 100, Number(ratio[2]) / 100, Number(ratio[3]) / 100];
  const part = (word: string) => {
    const m =
      new RegExp(`${word}\\s*(?:set|셋|split)?\\s*(?:을|를|은|는|:|=)?\\s*(\\d{1,2})\\s*%?`, 'i').exec(
        text,
      ) ?? new RegExp(`(\\d{1,2})\\s*%?\\s*(?:for\\s+)?${word}`, 'i').exec(text);
    return m ? Number(m[1]) / 100 : undefined;
  };
  const [tr, va, te] = [part(PART.train), part(PART.val), part(PART.test)];
  if (tr === undefined || va === undefined) return undefined;
  const rest = te ?? Math.round((1 - tr - va) * 100) / 100;
  return Math.abs(tr + va + rest - 1) < 0.011 && rest >= 0 ? [tr, va, rest] : undefined;
}

const splitDataset: SlotRule = (i) =>
  withDataset(i, 'split', (dataset) => {
    const [tr, va, te] = splitRatio(i.text) ?? [0.8, 0.1, 0.1];
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

/** The slot rules of intents that change something (each step waits for an approval). */
export const CHANGE_RULES = {
  train,
  deploy,
  rollback,
  pause,
  resume,
  cancelTraining,
  evaluate,
  promote,
  importDataset,
  exportDataset,
  splitDataset,
  feedbackToDataset,
};
