import { h } from './api.js';
import { t } from './i18n.js';

/** What the page modules share: final states, links, facts and charts. */
export const FINAL_JOB = ['succeeded', 'failed', 'cancelled'];
export const FINAL_ROLLOUT = ['completed', 'rolled_back', 'failed'];
const charts = new Map();

/** A time for people, in the page's language. */
export function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString(document.documentElement.lang) : '–';
}

/** Links to the pages of jobs, rollouts, models, devices and datasets. */
export const link = (href, text) => h('a', { href, text });
export const jobLink = (id) => link(`#jobs/${encodeURIComponent(id)}`, id);
export const rolloutLink = (id) => link(`#rollouts/${encodeURIComponent(id)}`, id);
export const modelLink = (ref) =>
  ref
    ? link(`#models/${encodeURIComponent(ref)}`, ref)
    : h('span', { class: 'text-body-secondary', text: t('fleet.noModel') });
export const deviceLink = (id, name) => link(`#devices/${encodeURIComponent(id)}`, name || id);
export const datasetLink = (ref) => link(`#datasets/${encodeURIComponent(String(ref).split('@')[0])}`, ref);

/** Label/value pairs as a definition list. */
export function facts(pairs) {
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
export function lineChart(id, labels, series, opts = {}) {
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
