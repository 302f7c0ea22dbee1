import type { AgentStateValue, StepRecord } from './state.js';
import { describeArgs } from './plan.js';
import { agentT, languageOf, readableNumber, type ReplyLanguage } from './i18n.js';

export { readableNumber } from './i18n.js';

/** Numbers worth a line in a report, found in a step's output or wait result. */
export function stepFigures(step: StepRecord, lng: ReplyLanguage = 'en'): string[] {
  const t = agentT(lng);
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
    const total = typeof src.devicesTotal === 'number' ? src.devicesTotal : null;
    if (src.state === 'rolled_back' && typeof src.devicesRolledBack === 'number') {
      // after a rollback the figure that matters is how many devices are back, not "0 updated"
      figures.push(
        t(total === null ? 'figures.rolledBack' : 'figures.rolledBackOf', {
          count: src.devicesRolledBack,
          total,
        }),
      );
    } else if (typeof src.devicesUpdated === 'number') {
      figures.push(
        t(total === null ? 'figures.updated' : 'figures.updatedOf', { count: src.devicesUpdated, total }),
      );
    }
    // people read name@N; the id only when no name came with it
    const modelName =
      typeof src.modelRef === 'string' ? src.modelRef : typeof src.model === 'string' ? src.model : null;
    if (modelName !== null) figures.push(t('figures.modelVersion', { model: modelName }));
    else if (typeof src.modelVersionId === 'string')
      figures.push(t('figures.modelVersion', { model: src.modelVersionId }));
    if (figures.length > 0) break;
  }
  return figures;
}

/** The end-of-request summary without an LLM, in the request's language: what ran, figures, and who approved each step. */
export function templateReport(state: AgentStateValue): string {
  const lng = languageOf(state.message);
  const t = agentT(lng);
  const plan = state.planned;
  if (plan === null) return t('report.nothingPlanned');
  if (plan.clarify) return plan.clarify;
  if (plan.steps.length === 0) return plan.reply ?? t('report.nothingToDo');
  const lines: string[] = [];
  const done = state.steps.filter((s) => s.state === 'done').length;
  const skipped = state.status === 'stopped' && state.steps.some((s) => s.state === 'skipped');
  const status = skipped
    ? 'gated'
    : ['done', 'stopped', 'failed'].includes(state.status)
      ? state.status
      : 'running';
  lines.push(t(`report.head.${status}`, { done, total: plan.steps.length }));
  const readOnly =
    state.status === 'done' &&
    state.steps.length > 0 &&
    state.steps.every((s) => s.risk === 'read' && s.state === 'done');
  if (readOnly) {
    // a question answered: what was found is the answer, not "1 of 1 steps completed"
    const found = state.steps.map((s) => {
      const findings = stepFindings(s, lng);
      const body = findings.length > 0 ? findings : [t('report.stepDone', { tool: s.tool })];
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
    let line = `${step.index + 1}. ${step.tool}${args ? ` (${args})` : ''}: ${t(`state.${step.state}`)}`;
    if (step.approvedBy && step.decision !== 'reject') {
      const key = step.decision === 'edit' ? 'report.editedApprovedBy' : 'report.approvedBy';
      line += ` — ${t(key, { name: step.approvedBy.name, role: step.approvedBy.role })}`;
    }
    if (step.state === 'rejected' && step.approvedBy)
      line += ` ${t('report.rejectedBy', { name: step.approvedBy.name })}${step.decisionReason ? `: "${step.decisionReason}"` : ''}`;
    if (step.waitOutcome) line += `; ${step.waitOutcome.summary}`;
    // a failed step's figures are those of an unfinished run, not results
    const figures = step.state === 'failed' ? [] : stepFigures(step, lng);
    if (figures.length > 0) line += `; ${figures.join(', ')}`;
    if (step.error && step.error.message !== step.waitOutcome?.summary) line += `; ${step.error.message}`;
    if (step.replayed) line += ` ${t('report.replayed')}`;
    lines.push(line);
    if (step.risk === 'read' && step.state === 'done')
      lines.push(...stepFindings(step, lng).map((l) => `   ${l}`));
  }
  if (plan.reply) lines.push(plan.reply);
  return lines.join('\n');
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const MAX_ITEMS = 10;

/** What an item is called: name@N, name or label before any id. */
function labelOf(item: Obj): string | null {
  for (const k of ['ref', 'name', 'label', 'model', 'tool', 'jobId', 'rolloutId', 'id']) {
    const v = item[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  return null;
}

function singular(noun: string): string {
  if (noun.endsWith('ies')) return `${noun.slice(0, -3)}y`;
  if (noun.endsWith('xes')) return noun.slice(0, -2);
  return noun.endsWith('s') ? noun.slice(0, -1) : noun;
}

/** What a list field is called: Korean from the dictionary, English from the field name. */
function nounOf(field: string, count: number, lng: ReplyLanguage): string {
  const english = field.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  const base = count === 1 ? singular(english) : english;
  return lng === 'en' ? base : agentT(lng)(`noun.${field}`, { defaultValue: base });
}

/** A state, status or health word in `lng` (unknown words as they are). */
function valueWord(value: string, lng: ReplyLanguage): string {
  return lng === 'en' ? value : agentT(lng)(`value.${value}`, { defaultValue: value });
}

/** The figures of one item worth a reader's attention, in a fixed order. */
function itemDetails(item: Obj, label: string, lng: ReplyLanguage): string[] {
  const t = agentT(lng);
  const out: string[] = [];
  const num = (k: string) => (typeof item[k] === 'number' ? (item[k] as number) : null);
  const str = (k: string) =>
    typeof item[k] === 'string' && item[k] !== '' && item[k] !== label ? (item[k] as string) : null;
  if (num('latestVersion') !== null && num('version') === null)
    out.push(t('details.version', { n: num('latestVersion') }));
  if (str('status')) out.push(valueWord(str('status')!, lng));
  if (str('state')) out.push(valueWord(str('state')!, lng));
  if (str('health')) out.push(t('details.health', { value: valueWord(str('health')!, lng) }));
  if (Array.isArray(item.stages) && item.stages.length > 0)
    out.push(item.stages.map((v) => valueWord(String(v), lng)).join(', '));
  const runs = str('model') ?? str('modelRef') ?? str('modelVersion');
  if (runs) out.push(t('details.model', { value: runs }));
  else if ('modelVersionId' in item && item.modelVersionId === null) out.push(t('details.noModel'));
  if (str('dataset')) out.push(t('details.dataset', { value: str('dataset') }));
  if (num('images') !== null) out.push(t('details.images', { count: num('images') }));
  if (num('boxes') !== null) out.push(t('details.boxes', { count: num('boxes') }));
  if (num('fps') !== null && num('fps')! > 0)
    out.push(t('details.fps', { value: readableNumber(Math.round(num('fps')!), lng) }));
  if (num('latencyP95Ms') !== null && num('latencyP95Ms')! > 0)
    out.push(t('details.p95', { value: num('latencyP95Ms')!.toFixed(1) }));
  const metrics = isObj(item.metrics) ? item.metrics : item;
  const map50 = metrics.mAP50 ?? metrics.map50;
  if (typeof map50 === 'number') out.push(`mAP50 ${map50.toFixed(3)}`);
  if (Array.isArray(item.issues) && item.issues.length > 0) out.push(item.issues.join('; '));
  if (Array.isArray(item.classes) && item.classes.length > 0) {
    const names = item.classes.map((c) => (isObj(c) ? String(c.name ?? '') : String(c))).filter(Boolean);
    out.push(t('details.classes', { value: names.join(', ') }));
  }
  if (str('risk')) out.push(t('details.risk', { value: valueWord(str('risk')!, lng) }));
  if (str('reason') && out.length < 3) out.push(str('reason')!);
  return out;
}

/** What a read step found, structured for rich answers (Block Kit, cards): a heading and items with their details. */
export interface StepResults {
  /** "Found 2 datasets:", or "No datasets found." (with no items); null for one described thing. */
  heading: string | null;
  items: Array<{ label: string; details: string[] }>;
  /** "… and 3 more." when the list was cut. */
  more: string | null;
}

/** What a read step found, as a heading and named items (names before ids), in `lng`. */
export function stepResults(step: StepRecord, lng: ReplyLanguage = 'en'): StepResults | null {
  const t = agentT(lng);
  const output = step.output;
  if (!isObj(output)) return null;
  const lists = Object.entries(output).filter(([, v]) => Array.isArray(v) && v.every(isObj));
  if (lists.length > 0) {
    const [field, items] = lists[0]! as [string, Obj[]];
    if (items.length === 0)
      return { heading: t('findings.none', { noun: nounOf(field, 0, lng) }), items: [], more: null };
    return {
      heading: t('findings.found', { count: items.length, noun: nounOf(field, items.length, lng) }),
      items: items.slice(0, MAX_ITEMS).map((item) => {
        const label = labelOf(item) ?? t('findings.unnamed');
        return { label, details: itemDetails(item, label, lng) };
      }),
      more: items.length > MAX_ITEMS ? t('findings.more', { count: items.length - MAX_ITEMS }) : null,
    };
  }
  const label = labelOf(output);
  if (label === null) return null;
  return { heading: null, items: [{ label, details: itemDetails(output, label, lng) }], more: null };
}

/** What a read step found, as lines a person reads (the items of a list, or the one thing described). */
export function stepFindings(step: StepRecord, lng: ReplyLanguage = 'en'): string[] {
  const results = stepResults(step, lng);
  if (results === null) return [];
  const line = (i: { label: string; details: string[] }) =>
    `${i.label}${i.details.length > 0 ? `: ${i.details.join(', ')}` : ''}`;
  if (results.heading === null) return results.items.map(line);
  return [
    results.heading,
    ...results.items.map((i) => `- ${line(i)}`),
    ...(results.more !== null ? [results.more] : []),
  ];
}
