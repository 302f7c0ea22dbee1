import { api, h, showError } from './api.js';
import { actionButton, requestAndRun } from './actions.js';
import { t } from './i18n.js';
import {
  deviceLink,
  facts,
  FINAL_ROLLOUT,
  fmtDuration,
  fmtTime,
  modelLink,
  rolloutLink,
} from './page-kit.js';
import { badge, fmtNumber, table } from './results.js';

/** Rollouts, newest first. */
export async function rolloutsList(root) {
  const { rollouts } = await api('/api/rollouts?limit=100');
  root.replaceChildren(
    h('h2', { class: 'h5', text: t('rollouts.heading') }),
    table(
      [
        'rollouts.id',
        'rollouts.model',
        'rollouts.state',
        'rollouts.target',
        'rollouts.updated',
        'rollouts.created',
      ],
      rollouts.map((r) =>
        h(
          'tr',
          { dataset: { rollout: r.id } },
          h('td', {}, rolloutLink(r.id)),
          h('td', {}, modelLink(r.model.ref)),
          h('td', {}, badge(r.state)),
          h('td', {
            text: r.target.tag ? r.target.tag : t('rollouts.devices', { n: r.target.deviceIds.length }),
          }),
          h('td', { text: `${r.devices.filter((d) => d.state === 'healthy').length} / ${r.devices.length}` }),
          h('td', { class: 'small', text: fmtTime(r.createdAt) }),
        ),
      ),
    ),
  );
}

// the steps a deployment records, in order, with when each happened
const STEPS = [
  ['waiting', 'waitingSince'],
  ['sent', 'sentAt'],
  ['healthy', 'healthyAt'],
  ['verified', 'verifiedAt'],
  ['finished', 'finishedAt'],
];

/** A device's steps in this rollout, each with its time after the rollout started (full time on hover). */
function timeline(d, start) {
  const steps = STEPS.filter(([, k]) => typeof d[k] === 'number');
  if (!steps.length) return '–';
  return h(
    'span',
    { class: 'rollout-timeline d-inline-flex flex-wrap gap-1' },
    steps.map(([step, k]) =>
      h('span', {
        class: 'badge text-bg-light border fw-normal',
        dataset: { step },
        title: fmtTime(d[k]),
        text: `${t(`rollouts.step.${step}`)} +${fmtDuration(d[k] - start)}`,
      }),
    ),
  );
}

/** One rollout: per-device timeline and state, pause / resume / roll back through approvals. */
export async function rolloutPage(root, id, me, subscribe) {
  const r = await api(`/api/rollouts/${encodeURIComponent(id)}`);
  const actions = h('div', { class: 'mb-3 d-flex gap-2 flex-wrap rollout-actions' });
  const box = h('div', { class: 'rollout-approval' });
  const reload = () => rolloutPage(root, id, me, subscribe);
  const ask = (tool, args) => () =>
    void requestAndRun(box, me, tool, args, t(`actions.${tool}`), reload).catch(showError);
  if (me.user.role !== 'viewer' && !FINAL_ROLLOUT.includes(r.state)) {
    if (r.state === 'paused')
      actions.append(
        actionButton(
          t('rollouts.resume'),
          'btn-outline-primary',
          ask('resume_rollout', { rolloutId: id }),
          'resume',
        ),
      );
    else
      actions.append(
        actionButton(
          t('rollouts.pause'),
          'btn-outline-warning',
          ask('pause_rollout', { rolloutId: id, reason: t('rollouts.pausedHere') }),
          'pause',
        ),
      );
  }
  if (me.user.role !== 'viewer' && r.state !== 'rolled_back')
    actions.append(
      actionButton(
        t('rollouts.rollback'),
        'btn-outline-danger',
        ask('rollback_rollout', { rolloutId: id, reason: t('rollouts.rolledBackHere') }),
        'rollback',
      ),
    );
  root.replaceChildren(
    h('h2', { class: 'h5' }, `${t('rollouts.rollout')} ${r.id} `, badge(r.state)),
    facts([
      ['rollouts.model', modelLink(r.model.ref)],
      [
        'rollouts.wave',
        t('rollouts.waveOf', { wave: Math.min(r.currentWave + 1, r.waveCount), waves: r.waveCount }),
      ],
      ['rollouts.target', r.target.tag ? r.target.tag : r.target.deviceIds.join(', ')],
      ['rollouts.reason', r.reason || '–'],
      ['rollouts.created', fmtTime(r.createdAt)],
      ['rollouts.finished', fmtTime(r.finishedAt)],
    ]),
    actions,
    box,
    table(
      [
        'rollouts.device',
        'rollouts.waveCol',
        'rollouts.state',
        'rollouts.confidence',
        'rollouts.latency',
        'rollouts.timeline',
        'rollouts.message',
      ],
      r.devices.map((d) => {
        const state = d.deviceState || d.state;
        const ok = d.state === 'healthy';
        return h(
          'tr',
          {
            class: ok ? 'table-success switched' : /failed|rolled_back/.test(d.state) ? 'table-danger' : '',
            dataset: { device: d.deviceId },
          },
          h('td', {}, deviceLink(d.deviceId, d.name)),
          h('td', { text: d.wave === 0 ? t('rollouts.canary') : String(d.wave) }),
          h('td', {}, badge(state)),
          h('td', {
            text:
              typeof d.meanConfidence === 'number'
                ? `${fmtNumber(d.meanConfidence, 2)}${typeof d.baselineConfidence === 'number' ? ` (${t('rollouts.before')} ${fmtNumber(d.baselineConfidence, 2)})` : ''}`
                : '–',
          }),
          h('td', {
            text: typeof d.meanLatencyP95Ms === 'number' ? `${fmtNumber(d.meanLatencyP95Ms, 1)} ms` : '–',
          }),
          h('td', { class: 'small' }, timeline(d, r.startedAt || r.createdAt)),
          h('td', { class: 'small', text: d.message || '' }),
        );
      }),
      { id: 'rollout-page-devices' },
    ),
  );
  await subscribe('rollout', id);
  return (e) =>
    e.type && e.type.startsWith('rollout.') && (e.rolloutId || (e.rollout && e.rollout.id)) === id
      ? 'reload'
      : null;
}
