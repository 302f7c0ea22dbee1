import { api, h } from './api.js';
import { t } from './i18n.js';
import { fmtNumber } from './results.js';

// One colour per class index (the first stays the red people know from earlier versions).
const PALETTE = [
  '#ff3b30',
  '#0a84ff',
  '#30d158',
  '#ff9f0a',
  '#bf5af2',
  '#64d2ff',
  '#ffd60a',
  '#ff375f',
  '#ac8e68',
  '#5e5ce6',
];
const PAGE = 24;
let chart = null;

/** The colour of a class, by its index in the dataset's class list. */
export function classColour(index) {
  return PALETTE[index % PALETTE.length];
}

/** Draws an image and its boxes ([x1,y1,x2,y2] in pixels, or x/y normalised), each class in its colour. */
export function drawBoxes(url, width, height, boxes, colourOf = () => PALETTE[0]) {
  const canvas = h('canvas', { class: 'sample-canvas', width: String(width), height: String(height) });
  const img = new Image();
  img.onload = () => {
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0, width, height);
    g.lineWidth = Math.max(2, width / 200);
    g.font = `${Math.max(12, width / 40)}px sans-serif`;
    for (const b of boxes) {
      let [x1, y1, x2, y2] = Array.isArray(b.box) ? b.box : [b.x1 ?? 0, b.y1 ?? 0, b.x2 ?? 0, b.y2 ?? 0];
      if (Math.max(x1, y1, x2, y2) <= 1)
        [x1, y1, x2, y2] = [x1 * width, y1 * height, x2 * width, y2 * height];
      const colour = colourOf(b);
      g.strokeStyle = colour;
      g.strokeRect(x1, y1, x2 - x1, y2 - y1);
      g.fillStyle = colour;
      g.fillText(String(b.label ?? b.className ?? b.class ?? ''), x1 + 2, Math.max(12, y1 - 2));
    }
  };
  img.src = url;
  return canvas;
}

/** A small square of a class colour for legends (styled through the CSSOM: the CSP refuses inline styles). */
export function swatch(colour) {
  const el = h('span', { class: 'legend-swatch me-1' });
  el.style.backgroundColor = colour;
  return el;
}

function sized(el, height) {
  el.style.height = `${height}px`;
  return el;
}

/** A dataset version: version picker, class legend and balance chart, split and class filters, paged samples, full-size view. */
export async function datasetView(detail, samples, ref, state = {}) {
  const info = await api(`/api/datasets/${encodeURIComponent(ref)}`);
  const classes = info.stats && Array.isArray(info.stats.classes) ? info.stats.classes : [];
  const names = classes.map((c) => c.name);
  const colourOf = (b) => classColour(Math.max(0, names.indexOf(b.className)));
  const split = state.split || '';
  const only = state.className || '';
  const offset = state.offset || 0;
  const redraw = (next) =>
    datasetView(detail, samples, `${info.name}@${info.version}`, {
      split,
      className: only,
      offset: 0,
      ...next,
    });
  detail.dataset.ref = `${info.name}@${info.version}`;

  const versions = h(
    'select',
    {
      class: 'form-select form-select-sm w-auto',
      id: 'dataset-version',
      'aria-label': t('datasets.versionPicker'),
      onchange: (e) =>
        void datasetView(detail, samples, `${info.name}@${e.target.value}`, { split, className: only }),
    },
    Array.from({ length: info.latestVersion || info.version }, (_, i) => i + 1)
      .reverse()
      .map((n) =>
        h('option', { value: String(n), selected: n === info.version, text: t('datasets.version', { n }) }),
      ),
  );
  const splits = h(
    'select',
    {
      class: 'form-select form-select-sm w-auto',
      id: 'dataset-split',
      'aria-label': t('datasets.split'),
      onchange: (e) => void redraw({ split: e.target.value }),
    },
    ['', 'train', 'val', 'test'].map((s) =>
      h('option', {
        value: s,
        selected: s === split,
        text: s
          ? `${t(`datasets.split.${s}`)} (${fmtNumber(info.stats.splits[s].images)})`
          : t('datasets.allSplits'),
      }),
    ),
  );
  const classFilter = h(
    'select',
    {
      class: 'form-select form-select-sm w-auto',
      id: 'dataset-class',
      'aria-label': t('datasets.classFilter'),
      onchange: (e) => void redraw({ className: e.target.value }),
    },
    [
      h('option', { value: '', text: t('datasets.allClasses') }),
      ...names.map((n) => h('option', { value: n, selected: n === only, text: n })),
    ],
  );
  const legend = h(
    'div',
    { class: 'd-flex flex-wrap gap-3 small mb-2', id: 'dataset-legend' },
    classes.map((c, i) =>
      h(
        'span',
        { dataset: { class: c.name } },
        swatch(classColour(i)),
        `${c.name} · ${t('datasets.boxes', { n: fmtNumber(c.boxes) })} · ${t('datasets.images', { n: fmtNumber(c.images) })}`,
      ),
    ),
  );
  const balance = h('canvas', { id: 'dataset-balance' });
  detail.replaceChildren(
    h(
      'div',
      { class: 'd-flex flex-wrap align-items-center gap-2 mb-2' },
      h('h2', { class: 'h5 mb-0 me-2', text: info.name }),
      versions,
    ),
    h('p', { class: 'small text-body-secondary mb-1', text: info.description || '' }),
    h('p', {
      class: 'small mb-2',
      text: `${t('datasets.images', { n: fmtNumber(info.stats.images) })} · ${t('datasets.boxes', { n: fmtNumber(info.stats.boxes) })}${info.note ? ` · ${info.note}` : ''}`,
    }),
    h('h3', { class: 'h6', text: t('datasets.classes') }),
    legend,
    sized(h('div', { class: 'balance-box mb-3' }, balance), Math.max(60, 26 * classes.length)),
    h(
      'div',
      { class: 'd-flex flex-wrap gap-2 align-items-center mb-2' },
      h('h3', { class: 'h6 mb-0 me-2', text: t('datasets.samples') }),
      splits,
      classFilter,
    ),
  );
  if (chart) chart.destroy();
  chart = new window.Chart(balance, {
    type: 'bar',
    data: {
      labels: names,
      datasets: [
        {
          label: t('datasets.boxesLabel'),
          data: classes.map((c) => c.boxes),
          backgroundColor: classes.map((_, i) => classColour(i)),
        },
      ],
    },
    options: {
      indexAxis: 'y',
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
    },
  });

  const q = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
  if (split) q.set('split', split);
  const { total, items } = await api(
    `/api/datasets/${encodeURIComponent(`${info.name}@${info.version}`)}/images?${q}`,
  );
  // the class filter applies to the page shown: images with at least one box of that class
  const shown = only ? items.filter((i) => i.boxes.some((b) => b.className === only)) : items;
  const pager = h(
    'div',
    { class: 'd-flex gap-2 align-items-center mt-2', id: 'dataset-pager' },
    h('button', {
      class: 'btn btn-sm btn-outline-secondary',
      type: 'button',
      id: 'dataset-prev',
      disabled: offset === 0,
      text: t('datasets.prev'),
      onclick: () => void redraw({ offset: Math.max(0, offset - PAGE) }),
    }),
    h('span', {
      class: 'small text-body-secondary',
      id: 'dataset-range',
      text: t('datasets.range', {
        from: fmtNumber(total ? offset + 1 : 0),
        to: fmtNumber(Math.min(total, offset + PAGE)),
        total: fmtNumber(total),
      }),
    }),
    h('button', {
      class: 'btn btn-sm btn-outline-secondary',
      type: 'button',
      id: 'dataset-next',
      disabled: offset + PAGE >= total,
      text: t('datasets.next'),
      onclick: () => void redraw({ offset: offset + PAGE }),
    }),
  );
  samples.replaceChildren(
    ...shown.map((i) =>
      h(
        'div',
        { class: 'col-6 col-md-4 col-xl-3' },
        h(
          'button',
          {
            class: 'btn p-0 border-0 w-100 sample',
            type: 'button',
            'aria-label': t('datasets.fullSize'),
            dataset: { split: i.split },
            onclick: () => fullSize(i, colourOf),
          },
          drawBoxes(i.url, i.width, i.height, i.boxes, colourOf),
        ),
        h('div', {
          class: 'small text-body-secondary',
          text: `${t(`datasets.split.${i.split}`)} · ${t('datasets.boxes', { n: i.boxes.length })}`,
        }),
      ),
    ),
    shown.length ? null : h('p', { class: 'text-body-secondary', text: t('common.none') }),
    h('div', { class: 'col-12' }, pager),
  );
}

/** Shows one image at full size with its boxes in a dialog. */
function fullSize(image, colourOf) {
  const dialog = document.getElementById('image-dialog');
  dialog.querySelector('.modal-title').textContent = `${image.sourcePath} · ${image.width}×${image.height}`;
  dialog
    .querySelector('.modal-body')
    .replaceChildren(drawBoxes(image.fullUrl, image.width, image.height, image.boxes, colourOf));
  window.bootstrap.Modal.getOrCreateInstance(dialog).show();
}
