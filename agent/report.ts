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
  const sources = [step.result, step.output].filter((v): v is Record<string, unknown> => v !== null && typeof v === 'object');
  for (const src of sources) {
    const metrics = (src.metrics ?? src) as Record<string, unknown>;
    const map50 = metrics.map50 ?? metrics.mAP50;
    const map5095 = metrics.map50_95 ?? metrics.mAP50_95 ?? metrics['mAP50-95'];
    if (typeof map50 === 'number') figures.push(`mAP50 ${map50.toFixed(3)}`);
    if (typeof map5095 === 'number') figures.push(`mAP50-95 ${map5095.toFixed(3)}`);
    if (typeof src.devicesUpdated === 'number') {
      figures.push(`${src.devicesUpdated} device${src.devicesUpdated === 1 ? '' : 's'} updated${typeof src.devicesTotal === 'number' ? ` of ${src.devicesTotal}` : ''}`);
    }
    if (typeof src.modelVersionId === 'string') figures.push(`model version ${src.modelVersionId}`);
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
      : state.status === 'stopped'
        ? `Stopped after a rejection: ${done} of ${plan.steps.length} steps completed.`
        : state.status === 'failed'
          ? `Stopped on a failure: ${done} of ${plan.steps.length} steps completed.`
          : `${done} of ${plan.steps.length} steps completed so far.`;
  lines.push(head);
  for (const step of state.steps) {
    const planned = plan.steps[step.index];
    const args = describeArgs(step.args ?? planned?.args ?? {});
    let line = `${step.index + 1}. ${step.tool}${args ? ` (${args})` : ''}: ${STATE_WORDS[step.state]}`;
    if (step.approvedBy && step.decision !== 'reject') {
      line += ` — ${step.decision === 'edit' ? 'edited and approved' : 'approved'} by ${step.approvedBy.name} (${step.approvedBy.role})`;
    }
    if (step.state === 'rejected' && step.approvedBy) line += ` by ${step.approvedBy.name}${step.decisionReason ? `: "${step.decisionReason}"` : ''}`;
    if (step.waitOutcome) line += `; ${step.waitOutcome.summary}`;
    // a failed step's figures are those of an unfinished run, not results
    const figures = step.state === 'failed' ? [] : stepFigures(step);
    if (figures.length > 0) line += `; ${figures.join(', ')}`;
    if (step.error && step.error.message !== step.waitOutcome?.summary) line += `; ${step.error.message}`;
    if (step.replayed) line += ' (already run before a restart; recorded result used)';
    lines.push(line);
  }
  if (plan.reply) lines.push(plan.reply);
  return lines.join('\n');
}
