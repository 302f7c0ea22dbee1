import type { AgentStateValue, StepRecord } from './state.js';
import { describeArgs } from './plan.js';

const STATE_WORDS: Record<StepRecord['state'], string> = {
  pending: 'not run',
  awaiting_approval: 'waiting for approval',
  approved: 'approved, not run yet',
  rejected: 'rejected',
  running: 'running',
  done: 'done',
  failed: 'failed',
  waiting: 'waiting',
  skipped: 'skipped',
};

/** Numbers worth a line in a report, found in a step's output or wait result. */
export function stepFigures(step: StepRecord): string[] {
  const figures: string[] = [];
  const sources = [step.result, step.output].filter(
    (v): v is Record<string, unknown> => v !== null && typeof v === 'object',
  );
  for (const src of sources) {
    const metrics = (src.metrics ?? src) as Record<string, unknown>;
    const map50 = metrics.map50 ?? metrics.mAP50;
    const map5095 = metrics.map50_95 ?? metrics.mAP50_95 ?? metrics['mAP50-95'];
    if (typeof map50 === 'number') figures.push(`mAP50 ${map50.toFixed(3)}`);
    if (typeof map5095 === 'number') figures.push(`mAP50-95 ${map5095.toFixed(3)}`);
    const of = typeof src.devicesTotal === 'number' ? ` of ${src.devicesTotal}` : '';
    if (src.state === 'rolled_back' && typeof src.devicesRolledBack === 'number') {
      // after a rollback the figure that matters is how many devices are back, not "0 updated"
      figures.push(`rolled back: ${src.devicesRolledBack}${of} devices on their previous model`);
    } else if (typeof src.devicesUpdated === 'number') {
      figures.push(`${src.devicesUpdated} device${src.devicesUpdated === 1 ? '' : 's'} updated${of}`);
    }
    // people read name@N; the id only when no name came with it
    const modelName =
      typeof src.modelRef === 'string' ? src.modelRef : typeof src.model === 'string' ? src.model : null;
    if (modelName !== null) figures.push(`model version ${modelName}`);
    else if (typeof src.modelVersionId === 'string') figures.push(`model version ${src.modelVersionId}`);
    if (figures.length > 0) break;
  }
  return figures;
}

/** The end-of-request summary without an LLM: what ran, figures, and who approved each step. */
export function templateReport(state: AgentStateValue): string {
  const plan = state.planned;
  if (plan === null) return 'Nothing was planned.';
  if (plan.clarify) return plan.clarify;
  if (plan.steps.length === 0) return plan.reply ?? 'Nothing to do.';
  const lines: string[] = [];
  const done = state.steps.filter((s) => s.state === 'done').length;
  const head =
    state.status === 'done'
      ? `Done: ${done} of ${plan.steps.length} steps completed.`
      : state.status === 'stopped' && state.steps.some((s) => s.state === 'skipped')
        ? `Stopped: ${done} of ${plan.steps.length} steps completed.`
        : state.status === 'stopped'
          ? `Stopped after a rejection: ${done} of ${plan.steps.length} steps completed.`
          : state.status === 'failed'
            ? `Stopped on a failure: ${done} of ${plan.steps.length} steps completed.`
            : `${done} of ${plan.steps.length} steps completed so far.`;
  lines.push(head);
  const readOnly =
    state.status === 'done' &&
    state.steps.length > 0 &&
    state.steps.every((s) => s.risk === 'read' && s.state === 'done');
  if (readOnly) {
    // a question answered: what was found is the answer, not "1 of 1 steps completed"
    const found = state.steps.map((s) => {
      const findings = stepFindings(s);
      const body = findings.length > 0 ? findings : [`${s.tool}: done`];
      return state.steps.length > 1
        ? [`${s.index + 1}. ${s.reason || s.tool}`, ...body.map((l) => `   ${l}`)].join('\n')
        : body.join('\n');
    });
    if (plan.reply) found.push(plan.reply);
    return found.join('\n');
  }
  for (const step of state.steps) {
    const planned = plan.steps[step.index];
    const args = describeArgs(step.args ?? planned?.args ?? {});
    let line = `${step.index + 1}. ${step.tool}${args ? ` (${args})` : ''}: ${STATE_WORDS[step.state]}`;
    if (step.approvedBy && step.decision !== 'reject') {
      line += ` — ${step.decision === 'edit' ? 'edited and approved' : 'approved'} by ${step.approvedBy.name} (${step.approvedBy.role})`;
    }
    if (step.state === 'rejected' && step.approvedBy)
      line += ` by ${step.approvedBy.name}${step.decisionReason ? `: "${step.decisionReason}"` : ''}`;
    if (step.waitOutcome) line += `; ${step.waitOutcome.summary}`;
    // a failed step's figures are those of an unfinished run, not results
    const figures = step.state === 'failed' ? [] : stepFigures(step);
    if (figures.length > 0) line += `; ${figures.join(', ')}`;
    if (step.error && step.error.message !== step.waitOutcome?.summary) line += `; ${step.error.message}`;
    if (step.replayed) line += ' (already run before a restart; recorded result used)';
    lines.push(line);
    if (step.risk === 'read' && step.state === 'done')
      lines.push(...stepFindings(step).map((l) => `   ${l}`));
  }
  if (plan.reply) lines.push(plan.reply);
  return lines.join('\n');
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const MAX_ITEMS = 10;

/** A number as people read it: whole numbers with separators, fractions to 3 places. */
export function readableNumber(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(3);
}

/** What an item is called: name@N, name or label before any id. */
function labelOf(item: Obj): string | null {
  for (const k of ['ref', 'name', 'label', 'model', 'tool', 'jobId', 'rolloutId', 'id']) {
    const v = item[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  return null;
}

function plural(n: number, word: string): string {
  return `${readableNumber(n)} ${n === 1 ? word : word.endsWith('x') ? `${word}es` : `${word}s`}`;
}

function singular(noun: string): string {
  if (noun.endsWith('ies')) return `${noun.slice(0, -3)}y`;
  if (noun.endsWith('xes')) return noun.slice(0, -2);
  return noun.endsWith('s') ? noun.slice(0, -1) : noun;
}

/** The figures of one item worth a reader's attention, in a fixed order. */
function itemDetails(item: Obj, label: string): string[] {
  const out: string[] = [];
  const num = (k: string) => (typeof item[k] === 'number' ? (item[k] as number) : null);
  const str = (k: string) =>
    typeof item[k] === 'string' && item[k] !== '' && item[k] !== label ? (item[k] as string) : null;
  if (num('latestVersion') !== null && num('version') === null) out.push(`v${num('latestVersion')}`);
  if (str('status')) out.push(str('status')!);
  if (str('state')) out.push(str('state')!);
  if (str('health')) out.push(`health ${str('health')}`);
  if (Array.isArray(item.stages) && item.stages.length > 0) out.push(item.stages.join(', '));
  const runs = str('model') ?? str('modelRef') ?? str('modelVersion');
  if (runs) out.push(`model ${runs}`);
  else if ('modelVersionId' in item && item.modelVersionId === null) out.push('no model');
  if (str('dataset')) out.push(`dataset ${str('dataset')}`);
  if (num('images') !== null) out.push(plural(num('images')!, 'image'));
  if (num('boxes') !== null) out.push(plural(num('boxes')!, 'box'));
  if (num('fps') !== null && num('fps')! > 0) out.push(`${readableNumber(Math.round(num('fps')!))} fps`);
  if (num('latencyP95Ms') !== null && num('latencyP95Ms')! > 0)
    out.push(`p95 ${num('latencyP95Ms')!.toFixed(1)} ms`);
  const metrics = isObj(item.metrics) ? item.metrics : item;
  const map50 = metrics.mAP50 ?? metrics.map50;
  if (typeof map50 === 'number') out.push(`mAP50 ${map50.toFixed(3)}`);
  if (Array.isArray(item.issues) && item.issues.length > 0) out.push(item.issues.join('; '));
  if (Array.isArray(item.classes) && item.classes.length > 0) {
    const names = item.classes.map((c) => (isObj(c) ? String(c.name ?? '') : String(c))).filter(Boolean);
    out.push(`classes ${names.join(', ')}`);
  }
  if (str('risk')) out.push(`${str('risk')} risk`);
  if (str('reason') && out.length < 3) out.push(str('reason')!);
  return out;
}

/** What a read step found, as lines a person reads (the items of a list, or the one thing described). */
export function stepFindings(step: StepRecord): string[] {
  const output = step.output;
  if (!isObj(output)) return [];
  const lists = Object.entries(output).filter(([, v]) => Array.isArray(v) && v.every(isObj));
  if (lists.length > 0) {
    const [field, items] = lists[0]! as [string, Obj[]];
    const noun = field.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    if (items.length === 0) return [`No ${noun} found.`];
    const lines = [`Found ${items.length} ${items.length === 1 ? singular(noun) : noun}:`];
    for (const item of items.slice(0, MAX_ITEMS)) {
      const label = labelOf(item) ?? '(unnamed)';
      const details = itemDetails(item, label);
      lines.push(`- ${label}${details.length > 0 ? `: ${details.join(', ')}` : ''}`);
    }
    if (items.length > MAX_ITEMS) lines.push(`… and ${items.length - MAX_ITEMS} more.`);
    return lines;
  }
  const label = labelOf(output);
  if (label === null) return [];
  const details = itemDetails(output, label);
  return [`${label}${details.length > 0 ? `: ${details.join(', ')}` : ''}`];
}
