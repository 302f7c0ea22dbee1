import { api, h, showError } from './api.js';
import { modelActions } from './actions.js';
import { t } from './i18n.js';
import { evaluationInsights } from './model-insights.js';
import { tryPanel } from './model-try.js';
import {
  datasetLink,
  deviceLink,
  downloadModelFile,
  facts,
  fmtTime,
  jobLink,
  lineChart,
} from './page-kit.js';
import { badge, fmtMetrics, fmtNumber } from './results.js';

/**
 * One model version: metrics, per-class AP, curves of its training, where it is deployed, ONNX
 * download, the newest evaluation (per-class AP, PR curves, confusion matrix), "try on an image",
 * and (for operators and above) evaluate, promote and deploy through approvals.
 */
export async function modelPage(root, ref, me, onChange) {
  const v = await api(`/api/models/${encodeURIComponent(ref)}`);
  const [{ devices }, epochs, { evaluations }] = await Promise.all([
    api('/api/devices').catch(() => ({ devices: [] })),
    v.lineage && v.lineage.jobId
      ? api(`/api/jobs/${encodeURIComponent(v.lineage.jobId)}/metrics`).then(
          (x) => x.epochs,
          () => [],
        )
      : Promise.resolve([]),
    api(`/api/models/${encodeURIComponent(v.ref)}/evaluations?limit=1`).catch(() => ({ evaluations: [] })),
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
    onclick: () => void downloadModelFile(v.ref).catch(showError),
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
    // replaceChildren would print a null as text
    h('div', {}, me && me.user.role !== 'viewer' ? modelActions(me, v, { tags, onChange }) : null),
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
    h('h3', { class: 'h5 mt-3', text: t('models.evaluationHeading') }),
    evaluationInsights(evaluations[0], v.classNames || []),
    tryPanel(v),
  );
}
