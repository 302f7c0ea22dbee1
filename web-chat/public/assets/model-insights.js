import { h } from './api.js';
import { classColour } from './dataset-view.js';
import { currentLang, t } from './i18n.js';
import { fmtNumber } from './results.js';

let prChart = null;

/** A ratio (AP, precision, recall) with three decimals even when whole, so a column lines up; a dash for none. */
const num = (x) =>
  typeof x === 'number'
    ? x.toLocaleString(currentLang() === 'ko' ? 'ko-KR' : 'en-US', {
        minimumFractionDigits: 3,
        maximumFractionDigits: 3,
      })
    : '–';

function perClassTable(e) {
  return h(
    'table',
    { class: 'table table-sm', id: 'model-eval-classes' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['models.class', 'models.instances', 'AP50', 'AP50-95', 'models.precision', 'models.recall'].map(
          (k, i) => h('th', { class: i ? 'text-end' : '', text: k.startsWith('AP') ? k : t(k) }),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      e.perClass.map((c) =>
        h(
          'tr',
          { dataset: { className: c.className } },
          h('td', { text: c.className }),
          h('td', { class: 'text-end', text: fmtNumber(c.instances) }),
          h('td', { class: 'text-end', text: num(c.ap50) }),
          h('td', { class: 'text-end', text: num(c.ap50_95) }),
          h('td', { class: 'text-end', text: num(c.precision) }),
          h('td', { class: 'text-end', text: num(c.recall) }),
        ),
      ),
    ),
  );
}

/** The IoU 0.5 precision-recall curve of each class with ground truth, one colour per class. */
function prCurve(e, classNames) {
  if (prChart) prChart.destroy();
  const withCurve = e.perClass.filter((c) => Array.isArray(c.pr50) && c.pr50.length);
  if (!withCurve.length) return h('p', { class: 'small text-body-secondary', text: t('models.noCurve') });
  const canvas = h('canvas', { id: 'model-pr', height: '240' });
  const colourOf = (name) => classColour(Math.max(0, classNames.indexOf(name)));
  prChart = new window.Chart(canvas, {
    type: 'line',
    data: {
      datasets: withCurve.map((c) => ({
        label: `${c.className} (AP50 ${num(c.ap50)})`,
        data: c.pr50.map((p, i) => ({ x: i / 100, y: p })),
        borderColor: colourOf(c.className),
        backgroundColor: colourOf(c.className),
        pointRadius: 0,
        stepped: 'after',
      })),
    },
    options: {
      animation: false,
      responsive: true,
      aspectRatio: 1.8,
      parsing: false,
      scales: {
        x: { type: 'linear', min: 0, max: 1, title: { display: true, text: t('models.recall') } },
        y: { min: 0, max: 1, title: { display: true, text: t('models.precision') } },
      },
    },
  });
  return canvas;
}

/** counts[actual][predicted] with a background row and column; each cell shaded by its share of the row. */
function confusionTable(e) {
  if (!e.confusion) return h('p', { class: 'small text-body-secondary', text: t('models.noConfusion') });
  const labels = [...e.confusion.classes, t('models.background')];
  const cell = (n, total, diagonal) => {
    const td = h('td', { class: `text-end${diagonal ? ' fw-semibold' : ''}`, text: fmtNumber(n) });
    // styles through the CSSOM: the page's CSP refuses inline style attributes
    if (total > 0 && n > 0)
      td.style.backgroundColor = `rgba(${diagonal ? '48, 209, 88' : '255, 59, 48'}, ${(0.15 + 0.6 * (n / total)).toFixed(2)})`;
    return td;
  };
  return h(
    'table',
    { class: 'table table-sm table-bordered confusion', id: 'model-confusion' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { class: 'small text-body-secondary', text: t('models.actualPredicted') }),
        labels.map((l) => h('th', { class: 'text-end', text: l })),
      ),
    ),
    h(
      'tbody',
      {},
      e.confusion.counts.map((row, i) => {
        const total = row.reduce((s, n) => s + n, 0);
        return h(
          'tr',
          { dataset: { actual: labels[i] } },
          h('th', { text: labels[i] }),
          row.map((n, j) => cell(n, total, i === j && i < labels.length - 1)),
        );
      }),
    ),
  );
}

/**
 * The newest evaluation of a version: per-class AP, the PR curve of each class and the confusion
 * matrix, or a line saying how to get one.
 */
export function evaluationInsights(evaluation, classNames) {
  if (!evaluation)
    return h(
      'div',
      { id: 'model-insights' },
      h('p', { class: 'small text-body-secondary', text: t('models.noEvaluationYet') }),
    );
  const e = evaluation;
  return h(
    'div',
    { id: 'model-insights' },
    h('p', {
      class: 'small',
      text: t('models.latestEvaluation', {
        dataset: e.dataset,
        split: t(`datasets.split.${e.split}`),
        images: fmtNumber(e.images),
        conf: fmtNumber(e.conf, 2),
      }),
    }),
    h(
      'div',
      { class: 'row g-3' },
      h(
        'div',
        { class: 'col-lg-6' },
        h('h3', { class: 'h6', text: t('models.apPerClass') }),
        perClassTable(e),
      ),
      h(
        'div',
        { class: 'col-lg-6' },
        h('h3', { class: 'h6', text: t('models.prCurve') }),
        prCurve(e, classNames),
      ),
    ),
    h('h3', { class: 'h6 mt-2', text: t('models.confusion') }),
    h('p', { class: 'small text-body-secondary', text: t('models.confusionHelp') }),
    h('div', { class: 'table-responsive' }, confusionTable(e)),
  );
}
