import { api, h } from './api.js';
import { fmtTime } from './app-governance.js';
import { t } from './i18n.js';

/** The recorded evaluations of a model version, newest first, under the models table. */
export async function showEvaluations(ref) {
  const { evaluations } = await api(`/api/models/${encodeURIComponent(ref)}/evaluations`);
  const num = (x) => (typeof x === 'number' ? x.toFixed(3) : '–');
  const head = [
    'models.dataset',
    'models.split',
    'models.images',
    'models.map50',
    'models.map5095',
    'models.precision',
    'models.recall',
    'models.perClass',
    'models.evaluatedAt',
  ];
  const rows = evaluations.map((e) =>
    h(
      'tr',
      {},
      h('td', { text: e.dataset }),
      h('td', { text: e.split }),
      h('td', {
        text:
          e.images < e.imagesTotal
            ? t('models.imagesOf', { n: e.images, total: e.imagesTotal })
            : String(e.images),
      }),
      h('td', { text: num(e.metrics.mAP50) }),
      h('td', { text: num(e.metrics.mAP50_95) }),
      h('td', { text: num(e.metrics.precision) }),
      h('td', { text: num(e.metrics.recall) }),
      h('td', { class: 'small', text: e.perClass.map((c) => `${c.className} ${num(c.ap50)}`).join(', ') }),
      h('td', { class: 'small', text: fmtTime(e.finishedAt) }),
    ),
  );
  document.getElementById('model-evaluations').replaceChildren(
    h('h6', { text: t('models.evaluationsOf', { ref }) }),
    evaluations.length
      ? h(
          'table',
          { class: 'table table-sm' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              head.map((k) => h('th', { text: t(k) })),
            ),
          ),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'text-body-secondary', text: t('models.noEvaluations', { ref }) }),
  );
}
