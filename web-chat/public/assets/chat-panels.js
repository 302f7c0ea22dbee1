import { api, h, showError, UiError } from './api.js';
import { t } from './i18n.js';
import { badge } from './results.js';

/** The job and rollout the chat's side panels follow, and the training chart. */
export const panel = { chart: null, jobId: null, rolloutId: null };

export function setPhase(text, pct) {
  const bar = document.getElementById('training-progress');
  document.getElementById('training-phase').textContent = text;
  bar.style.width = `${pct ?? 0}%`;
  bar.textContent = pct === null ? '' : `${pct}%`;
  bar.parentElement.setAttribute('aria-valuenow', String(pct ?? 0));
}

export function ensureChart() {
  if (panel.chart) return panel.chart;
  document.getElementById('training-card').classList.remove('d-none');
  // nothing has run yet: the runner is loading data and building the model
  setPhase(t('training.preparing'), null);
  panel.chart = new window.Chart(document.getElementById('training-chart'), {
    type: 'line',
    data: {
      labels: [],
      datasets: [
        { label: t('training.loss'), data: [], yAxisID: 'y' },
        { label: t('training.map'), data: [], yAxisID: 'y1' },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      scales: { y: { position: 'left' }, y1: { position: 'right', min: 0, max: 1 } },
    },
  });
  return panel.chart;
}

function lossOf(metrics) {
  const keys = Object.keys(metrics).filter((k) => /loss/i.test(k));
  return keys.length ? keys.reduce((s, k) => s + Number(metrics[k]), 0) : null;
}

export function onTrainingMetrics(e) {
  const chart = ensureChart();
  if (e.kind === 'epoch') {
    const label = t('training.epoch', { n: e.epoch });
    if (!chart.data.labels.includes(label)) {
      chart.data.labels.push(label);
      chart.data.datasets[0].data.push(lossOf(e.metrics));
      chart.data.datasets[1].data.push(e.metrics.mAP50 ?? e.metrics.map50 ?? null);
      chart.update();
    }
  }
  const epochs = e.epochs || '?';
  if (e.kind === 'epoch') {
    // an epoch ended: the next one starts at 0 %, the last one ends the run
    const last = typeof e.epochs === 'number' && e.epoch >= e.epochs;
    setPhase(
      t(last ? 'training.lastEpochDone' : 'training.epochDone', { n: e.epoch, epochs }),
      last ? 100 : 0,
    );
  } else if (e.batches) {
    setPhase(
      t('training.epochOf', { n: e.epoch, epochs, batch: e.batch || 0, batches: e.batches }),
      Math.round((100 * (e.batch || 0)) / e.batches),
    );
  }
  document.getElementById('training-card').dataset.epochs = String(chart.data.labels.length);
}

/** Shows each device of the rollout with its state; switched devices turn green. */
export function renderRolloutDevices(devices) {
  const body = document.getElementById('rollout-devices');
  for (const d of devices) {
    let row = body.querySelector(`tr[data-device="${window.CSS.escape(d.deviceId)}"]`);
    if (!row) {
      row = h(
        'tr',
        { class: 'device-row', dataset: { device: d.deviceId } },
        h('td', { text: d.name || d.deviceId }),
        h('td', { class: 'device-state' }),
      );
      body.append(row);
    }
    row.querySelector('.device-state').replaceChildren(badge(d.state));
    const switched = /healthy|switched|completed/.test(d.state);
    row.classList.toggle('switched', switched);
    // Bootstrap 5.3 paints each cell from --bs-table-bg: the row's contextual class sets it
    row.classList.toggle('table-success', switched);
    row.classList.toggle('table-danger', /failed|rolled_back/.test(d.state));
  }
}

function showRolloutSummary(s) {
  document.getElementById('rollout-summary').textContent = t('rollout.summary', {
    state: t(`value.${s.state}`),
    wave: Math.min((s.currentWave ?? 0) + 1, s.waveCount ?? 1),
    waves: s.waveCount ?? 1,
  });
}

export async function onRollout(e) {
  document.getElementById('rollout-card').classList.remove('d-none');
  try {
    // the rollout's own status is authoritative; `rollout.finished` carries no wave numbers
    const r = await api(`/api/rollouts/${encodeURIComponent(panel.rolloutId)}`);
    showRolloutSummary(r);
    renderRolloutDevices(
      r.devices.map((d) => ({ deviceId: d.deviceId, name: d.name, state: d.deviceState || d.state })),
    );
  } catch {
    showRolloutSummary(e.rollout || e);
    if (e.deviceId)
      renderRolloutDevices([{ deviceId: e.deviceId, name: e.deviceId, state: e.message || e.state }]);
  }
}

export async function loadJobMetrics(jobId) {
  try {
    const { epochs } = await api(`/api/jobs/${encodeURIComponent(jobId)}/metrics`);
    for (const ep of epochs || [])
      onTrainingMetrics({ kind: 'epoch', epoch: ep.epoch, epochs: ep.epochs, metrics: ep.metrics || {} });
  } catch (err) {
    // a server without training (or a job of another project) has no curve to show
    if (!(err instanceof UiError && (err.code === 'unavailable' || err.code === 'not_found'))) showError(err);
  }
}

export async function showJob(jobId) {
  panel.jobId = jobId;
  document
    .getElementById('training-job')
    .replaceChildren(h('a', { href: `#jobs/${encodeURIComponent(jobId)}`, text: jobId }));
  ensureChart();
  await loadJobMetrics(jobId);
  try {
    const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status))
      setPhase(t(`training.finished.${job.status}`), job.status === 'succeeded' ? 100 : null);
  } catch {
    // the chart is what matters; the job's own state is a detail
  }
}

export async function showRollout(rolloutId) {
  panel.rolloutId = rolloutId;
  document
    .getElementById('rollout-id')
    .replaceChildren(h('a', { href: `#rollouts/${encodeURIComponent(rolloutId)}`, text: rolloutId }));
  await onRollout({});
}

/** Empties the training chart and the rollout table. */
export function resetSidePanels() {
  if (panel.chart) panel.chart.destroy();
  panel.chart = null;
  document.getElementById('training-card').classList.add('d-none');
  document.getElementById('training-job').replaceChildren();
  document.getElementById('rollout-card').classList.add('d-none');
  document.getElementById('rollout-devices').replaceChildren();
  document.getElementById('rollout-summary').textContent = '';
  document.getElementById('rollout-id').replaceChildren();
}
