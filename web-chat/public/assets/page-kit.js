import { api, h, showError } from './api.js';
import { t } from './i18n.js';

/** What the page modules share: final states, links, facts and charts. */
export const FINAL_JOB = ['succeeded', 'failed', 'cancelled'];
export const FINAL_ROLLOUT = ['completed', 'rolled_back', 'failed'];
const charts = new Map();

/** A time for people, in the page's language. */
export function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString(document.documentElement.lang) : '–';
}

/** A duration for people: "42 s", "3 min 5 s", "2 h 4 min" (in the page's language). */
export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t('time.seconds', { s });
  if (s < 3600) return t('time.minutes', { m: Math.floor(s / 60), s: s % 60 });
  return t('time.hours', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
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

/** Downloads one stored file of a model version through a short-lived link. */
export async function downloadModelFile(ref, file = 'model.onnx') {
  const link = await api(`/api/models/${encodeURIComponent(ref)}/download?file=${encodeURIComponent(file)}`);
  const name = file === 'model.onnx' ? `${ref.replace('@', '-')}.onnx` : `${ref.replace('@', '-')}-${file}`;
  const a = h('a', { href: link.url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

/** The files a training run produced (its model version's artifacts), each with its size and a download button. */
export function artifactsTable(version) {
  const files = (version && version.artifacts) || [];
  if (!files.length)
    return h('p', { class: 'small text-body-secondary', id: 'job-artifacts', text: t('jobs.noArtifacts') });
  return h(
    'table',
    { class: 'table table-sm', id: 'job-artifacts' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { text: t('jobs.file') }),
        h('th', { class: 'text-end', text: t('jobs.size') }),
        h('th', { text: 'sha256' }),
        h('th', {}),
      ),
    ),
    h(
      'tbody',
      {},
      files.map((f) =>
        h(
          'tr',
          { dataset: { file: f.name } },
          h('td', { text: f.name }),
          h('td', { class: 'text-end', text: fmtSize(f.size) }),
          h('td', { class: 'small font-monospace', title: f.sha256, text: `${f.sha256.slice(0, 12)}…` }),
          h(
            'td',
            { class: 'text-end' },
            h('button', {
              class: 'btn btn-sm btn-outline-primary',
              type: 'button',
              dataset: { action: 'download' },
              text: t('jobs.download'),
              onclick: () => void downloadModelFile(version.ref, f.name).catch(showError),
            }),
          ),
        ),
      ),
    ),
  );
}

/** Bytes for people: "812 B", "3.4 KB", "12.1 MB". */
export function fmtSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
