import { api, h, showError } from './api.js';
import { actionButton, requestAndRun } from './actions.js';
import { t } from './i18n.js';
import { facts, fmtTime, lineChart, modelLink, rolloutLink } from './page-kit.js';
import { badge, fmtNumber, table } from './results.js';

// points a sparkline keeps: an hour of heartbeats every 5 s
const KEEP = 720;

/** One device: live figures with sparklines, its model and model history, roll back through an approval. */
export async function devicePage(root, id, me) {
  const [d, { rollouts }, { samples }] = await Promise.all([
    api(`/api/devices/${encodeURIComponent(id)}`),
    api('/api/rollouts?limit=100'),
    api(`/api/devices/${encodeURIComponent(id)}/history?minutes=60`).catch(() => ({ samples: [] })),
  ]);
  const mine = rollouts.filter((r) => r.devices.some((x) => x.deviceId === id));
  const history = { labels: [], fps: [], p95: [], confidence: [] };
  const push = (x) => {
    history.labels.push(
      new Date(x.lastHeartbeatAt || Date.now()).toLocaleTimeString(document.documentElement.lang),
    );
    history.fps.push(x.fps);
    history.p95.push(x.latencyP95Ms);
    history.confidence.push(x.meanTopConfidence);
    for (const k of Object.keys(history)) if (history[k].length > KEEP) history[k].shift();
  };
  // the last hour as the server kept it, then each heartbeat while the page is open
  for (const x of samples) push({ ...x, lastHeartbeatAt: x.at });
  if (!samples.length || samples[samples.length - 1].at < (d.lastHeartbeatAt || 0)) push(d);
  const box = h('div', { class: 'device-approval' });
  const actions = h('div', { class: 'mb-3 device-actions' });
  const latest = mine.find((r) => r.state !== 'rolled_back');
  if (me.user.role !== 'viewer' && latest) {
    actions.append(
      actionButton(
        t('devices.rollback', { model: latest.model.ref }),
        'btn-outline-danger',
        () =>
          void requestAndRun(
            box,
            me,
            'rollback_rollout',
            { rolloutId: latest.id, reason: t('devices.rollbackReason', { device: d.name }) },
            t('devices.rollbackReason', { device: d.name }),
            () => devicePage(root, id, me),
          ).catch(showError),
        'rollback',
      ),
    );
  }
  const figures = h('div', { class: 'row g-2 mb-3 device-figures' });
  const spark = h('div', { class: 'row g-2 mb-3' });
  const draw = (x) => {
    figures.replaceChildren(
      ...[
        ['devices.fps', fmtNumber(x.fps, 1)],
        ['devices.latency', `${fmtNumber(x.latencyP50Ms, 1)} / ${fmtNumber(x.latencyP95Ms, 1)} ms`],
        [
          'devices.confidence',
          typeof x.meanTopConfidence === 'number' ? fmtNumber(x.meanTopConfidence, 2) : '–',
        ],
        ['devices.cpu', `${Math.round(x.cpuPercent)} %`],
        ['devices.memory', `${fmtNumber(Math.round(x.memoryMb))} MB`],
        [
          'devices.temperature',
          typeof x.temperatureC === 'number' ? `${Math.round(x.temperatureC)} °C` : '–',
        ],
      ].map(([k, v]) =>
        h(
          'div',
          { class: 'col-6 col-md-2' },
          h(
            'div',
            { class: 'border rounded p-2', dataset: { figure: k } },
            h('div', { class: 'small text-body-secondary', text: t(k) }),
            h('div', { class: 'fs-5', text: v }),
          ),
        ),
      ),
    );
    spark.replaceChildren(
      ...[
        ['device-fps', 'devices.fps', history.fps],
        ['device-p95', 'devices.p95', history.p95],
        ['device-conf', 'devices.confidence', history.confidence],
      ].map(([cid, k, data]) =>
        h(
          'div',
          { class: 'col-md-4' },
          h('div', { class: 'small text-body-secondary', text: t(k) }),
          lineChart(cid, [...history.labels], [{ label: t(k), data: [...data] }], {
            height: '90',
            legend: false,
            points: false,
            scales: { y: { beginAtZero: true } },
          }),
        ),
      ),
    );
  };
  root.replaceChildren(
    h('h2', { class: 'h5' }, `${d.name} `, badge(d.health && d.health.online ? d.health.status : 'offline')),
    facts([
      ['devices.model', modelLink(d.model)],
      ['devices.previous', d.previousModel ? modelLink(d.previousModel) : '–'],
      ['devices.state', badge(d.state)],
      ['devices.issues', d.health && d.health.issues.length ? d.health.issues.join('; ') : '–'],
      ['devices.hardware', [d.hardware, d.provider].filter(Boolean).join(' · ')],
      [
        'devices.runtime',
        Object.entries(d.runtime || {})
          .map(([k, v]) => `${k} ${v}`)
          .join(' · ') || '–',
      ],
      ['devices.tags', (d.tags || []).join(', ')],
      ['devices.lastSeen', fmtTime(d.lastHeartbeatAt)],
    ]),
    figures,
    spark,
    actions,
    box,
    h('h3', { class: 'h6', text: t('devices.history') }),
    table(
      ['rollouts.id', 'rollouts.model', 'rollouts.state', 'rollouts.created'],
      mine.map((r) =>
        h(
          'tr',
          {},
          h('td', {}, rolloutLink(r.id)),
          h('td', {}, modelLink(r.model.ref)),
          h('td', {}, badge(r.state)),
          h('td', { class: 'small', text: fmtTime(r.createdAt) }),
        ),
      ),
      { id: 'device-rollouts' },
    ),
  );
  draw(d);
  return (e) => {
    if (e.type === 'device.updated' && e.device && e.device.id === id) {
      push(e.device);
      draw(e.device);
    }
    return null;
  };
}
