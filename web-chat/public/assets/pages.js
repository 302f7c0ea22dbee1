import { api, h, showError } from './api.js';
import { actionButton, modelActions, requestAndRun } from './actions.js';
import { t } from './i18n.js';
import { badge, fmtMetrics, fmtNumber, table } from './results.js';

const FINAL_JOB = ['succeeded', 'failed', 'cancelled'];
const FINAL_ROLLOUT = ['completed', 'rolled_back', 'failed'];
const charts = new Map();

function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString(document.documentElement.lang) : '–';
}

const link = (href, text) => h('a', { href, text });
const jobLink = (id) => link(`#jobs/${encodeURIComponent(id)}`, id);
const rolloutLink = (id) => link(`#rollouts/${encodeURIComponent(id)}`, id);
const modelLink = (ref) =>
  ref
    ? link(`#models/${encodeURIComponent(ref)}`, ref)
    : h('span', { class: 'text-body-secondary', text: t('fleet.noModel') });
const deviceLink = (id, name) => link(`#devices/${encodeURIComponent(id)}`, name || id);
const datasetLink = (ref) => link(`#datasets/${encodeURIComponent(String(ref).split('@')[0])}`, ref);

function facts(pairs) {
  return h(
    'dl',
    { class: 'row small mb-3 facts' },
    pairs
      .filter(Boolean)
      .flatMap(([k, v]) => [
        h('dt', { class: 'col-sm-3 fw-normal text-body-secondary', text: t(k) }),
        h('dd', { class: 'col-sm-9 mb-1', dataset: { fact: k } }, v),
      ]),
  );
}

/** A line chart on a canvas, replaced when the page is drawn again. */
function lineChart(id, labels, series, opts = {}) {
  if (charts.has(id)) charts.get(id).destroy();
  const canvas = h('canvas', { id, height: opts.height || '220' });
  const chart = new window.Chart(canvas, {
    type: 'line',
    data: {
      labels,
      datasets: series.map((s) => ({
        label: s.label,
        data: s.data,
        yAxisID: s.axis || 'y',
        pointRadius: opts.points === false ? 0 : 2,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      scales: opts.scales || { y: { position: 'left' }, y1: { position: 'right', min: 0, max: 1 } },
      plugins: { legend: { display: opts.legend !== false } },
    },
  });
  charts.set(id, chart);
  return canvas;
}

/** Training jobs, newest first, each a link to its page. */
export async function jobsList(root) {
  const { jobs } = await api('/api/jobs?limit=100');
  root.replaceChildren(
    h('h2', { class: 'h5', text: t('jobs.heading') }),
    table(
      [
        'jobs.id',
        'jobs.status',
        'jobs.model',
        'jobs.dataset',
        'jobs.progress',
        'jobs.mAP50',
        'jobs.runner',
        'jobs.created',
      ],
      jobs.map((j) =>
        h(
          'tr',
          { dataset: { job: j.id } },
          h('td', {}, jobLink(j.id)),
          h('td', {}, badge(j.status)),
          h('td', { text: j.name }),
          h('td', {}, datasetLink(j.dataset)),
          h('td', { text: t('jobs.epochs', { done: j.epochsDone, total: j.epochs }) }),
          h('td', {
            text:
              j.lastMetrics && typeof j.lastMetrics.mAP50 === 'number' ? fmtNumber(j.lastMetrics.mAP50) : '–',
          }),
          h('td', { class: 'small', text: j.runnerId || '–' }),
          h('td', { class: 'small', text: fmtTime(j.createdAt) }),
        ),
      ),
    ),
  );
}

/** One training job: status, curves, live log tail, the model it produced, cancel through an approval. */
export async function jobPage(root, id, me, subscribe) {
  const [job, { epochs }, { lines }] = await Promise.all([
    api(`/api/jobs/${encodeURIComponent(id)}`),
    api(`/api/jobs/${encodeURIComponent(id)}/metrics`),
    api(`/api/jobs/${encodeURIComponent(id)}/logs?tail=200`),
  ]);
  const model = job.modelVersionId
    ? await api(`/api/models/${encodeURIComponent(job.modelVersionId)}`).catch(() => null)
    : null;
  const actions = h('div', { class: 'mb-3 job-actions' });
  const log = h('pre', { class: 'job-log bg-body-tertiary p-2 rounded small', text: lines.join('\n') });
  const loss = (m) =>
    Object.entries(m)
      .filter(([k]) => /loss/i.test(k))
      .reduce((s, [, v]) => s + Number(v), 0);
  root.replaceChildren(
    h('h2', { class: 'h5' }, `${t('jobs.job')} ${job.id} `, badge(job.status)),
    facts([
      ['jobs.model', model ? modelLink(model.ref) : job.name],
      ['jobs.dataset', datasetLink(job.dataset)],
      ['jobs.progress', t('jobs.epochs', { done: job.epochsDone, total: job.epochs })],
      ['jobs.attempt', `${job.attempt} / ${job.maxAttempts}`],
      ['jobs.runner', job.runnerId || '–'],
      [
        'jobs.config',
        Object.entries(job.config || {})
          .map(([k, v]) => `${k} ${v}`)
          .join(' · '),
      ],
      ['jobs.message', job.message || '–'],
      ['jobs.created', fmtTime(job.createdAt)],
      ['jobs.finished', fmtTime(job.finishedAt)],
    ]),
    actions,
    h('h3', { class: 'h6', text: t('jobs.curves') }),
    epochs.length
      ? lineChart(
          'job-chart',
          epochs.map((e) => String(e.epoch)),
          [
            { label: t('training.loss'), data: epochs.map((e) => loss(e.metrics)) },
            { label: 'mAP50', data: epochs.map((e) => e.metrics.mAP50 ?? null), axis: 'y1' },
          ],
        )
      : h('p', { class: 'small text-body-secondary', text: t('jobs.noEpochs') }),
    h('h3', { class: 'h6 mt-3', text: t('jobs.log') }),
    log,
  );
  if (!FINAL_JOB.includes(job.status) && me.user.role !== 'viewer') {
    actions.replaceChildren(
      actionButton(
        t('jobs.cancel'),
        'btn-outline-danger',
        () =>
          void requestAndRun(
            actions,
            me,
            'cancel_training',
            { jobId: job.id, reason: t('jobs.cancelReason') },
            t('jobs.cancelReason'),
            () => jobPage(root, id, me, subscribe),
          ).catch(showError),
        'cancel',
      ),
    );
  }
  await subscribe('job', id);
  return (e) => {
    if (e.type === 'training.log' && e.jobId === id) {
      log.textContent += `${log.textContent ? '\n' : ''}${e.lines.join('\n')}`;
      log.scrollTop = log.scrollHeight;
    }
    if (
      (e.type === 'training.metrics' && e.kind === 'epoch' && e.jobId === id) ||
      ((e.type === 'training.finished' || e.type === 'training.status') && e.job && e.job.id === id)
    )
      return 'reload';
    return null;
  };
}

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

/** One device: live figures with sparklines, its model and model history, roll back through an approval. */
export async function devicePage(root, id, me) {
  const [d, { rollouts }] = await Promise.all([
    api(`/api/devices/${encodeURIComponent(id)}`),
    api('/api/rollouts?limit=100'),
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
    for (const k of Object.keys(history)) if (history[k].length > 60) history[k].shift();
  };
  push(d);
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

/**
 * One model version: metrics, per-class AP, curves of its training, where it is deployed, ONNX
 * download, and (for operators and above) evaluate, promote and deploy through approvals.
 */
export async function modelPage(root, ref, me, onChange) {
  const v = await api(`/api/models/${encodeURIComponent(ref)}`);
  const [{ devices }, epochs] = await Promise.all([
    api('/api/devices').catch(() => ({ devices: [] })),
    v.lineage && v.lineage.jobId
      ? api(`/api/jobs/${encodeURIComponent(v.lineage.jobId)}/metrics`).then(
          (x) => x.epochs,
          () => [],
        )
      : Promise.resolve([]),
  ]);
  const on = devices.filter((d) => d.model === v.ref);
  // device groups to deploy to: line tags first, then any other tag
  const tags = [...new Set(devices.flatMap((d) => d.tags || []))].sort(
    (a, b) => Number(!a.startsWith('line-')) - Number(!b.startsWith('line-')) || a.localeCompare(b),
  );
  const metricRows = Object.entries(v.metrics || {})
    .filter(([, x]) => typeof x === 'number')
    .map(([k, x]) => h('tr', {}, h('td', { text: k }), h('td', { class: 'text-end', text: fmtNumber(x) })));
  const perClass = Object.entries(v.perClass || {});
  const classKeys = [...new Set(perClass.flatMap(([, m]) => Object.keys(m)))];
  const download = h('button', {
    class: 'btn btn-sm btn-outline-primary',
    type: 'button',
    id: 'model-download',
    text: t('models.download'),
    onclick: () =>
      void (async () => {
        const file = await api(`/api/models/${encodeURIComponent(v.ref)}/download`);
        const a = h('a', { href: file.url, download: `${v.ref.replace('@', '-')}.onnx` });
        document.body.append(a);
        a.click();
        a.remove();
      })().catch(showError),
  });
  root.replaceChildren(
    h('h2', { class: 'h5' }, `${v.ref} `, ...(v.stages || []).map(badge)),
    facts([
      ['models.dataset', v.lineage && v.lineage.dataset ? datasetLink(v.lineage.dataset) : '–'],
      ['models.job', v.lineage && v.lineage.jobId ? jobLink(v.lineage.jobId) : '–'],
      ['models.classes', (v.classNames || []).join(', ')],
      [
        'models.deployedOn',
        on.length
          ? h(
              'span',
              { id: 'model-deployed-on' },
              on.flatMap((d, i) => [i ? ', ' : '', deviceLink(d.id, d.name)]),
            )
          : h('span', { id: 'model-deployed-on', text: t('models.nowhere') }),
      ],
      ['models.created', fmtTime(v.createdAt)],
    ]),
    h('div', { class: 'mb-3' }, download),
    me && me.user.role !== 'viewer' ? modelActions(me, v, { tags, onChange }) : null,
    h(
      'div',
      { class: 'row g-3' },
      h(
        'div',
        { class: 'col-md-4' },
        h('h3', { class: 'h6', text: t('models.metrics') }),
        h('table', { class: 'table table-sm', id: 'model-metrics' }, h('tbody', {}, metricRows)),
      ),
      h(
        'div',
        { class: 'col-md-8' },
        h('h3', { class: 'h6', text: t('models.perClassHeading') }),
        perClass.length
          ? h(
              'table',
              { class: 'table table-sm', id: 'model-per-class' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', { text: t('models.class') }),
                  classKeys.map((k) => h('th', { class: 'text-end', text: k })),
                ),
              ),
              h(
                'tbody',
                {},
                perClass.map(([c, m]) =>
                  h(
                    'tr',
                    {},
                    h('td', { text: c }),
                    classKeys.map((k) =>
                      h('td', { class: 'text-end', text: typeof m[k] === 'number' ? fmtNumber(m[k]) : '–' }),
                    ),
                  ),
                ),
              ),
            )
          : h('p', { class: 'small text-body-secondary', text: t('common.none') }),
      ),
    ),
    h('h3', { class: 'h6', text: t('jobs.curves') }),
    epochs.length
      ? lineChart(
          'model-chart',
          epochs.map((e) => String(e.epoch)),
          [
            { label: 'mAP50', data: epochs.map((e) => e.metrics.mAP50 ?? null), axis: 'y1' },
            {
              label: 'mAP50-95',
              data: epochs.map((e) => e.metrics.mAP50_95 ?? e.metrics['mAP50-95'] ?? null),
              axis: 'y1',
            },
          ],
        )
      : h('p', { class: 'small text-body-secondary', text: t('jobs.noEpochs') }),
    h('p', {
      class: 'small mt-2',
      text: fmtMetrics(v.metrics, ['mAP50', 'mAP50_95', 'precision', 'recall']),
    }),
  );
}
