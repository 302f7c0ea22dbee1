import { api, h, showError } from './api.js';
import { classColour, drawBoxes, swatch } from './dataset-view.js';
import { t } from './i18n.js';
import { fmtNumber } from './results.js';

// the server refuses bigger images; saying so here spares an upload
const MAX_BYTES = 10 * 1024 * 1024;

/**
 * "Try on an image": a person picks or drops an image, the server runs this version on it (nothing
 * is stored) and the boxes are drawn on the image, one colour per class, with a legend.
 */
export function tryPanel(version) {
  const classNames = version.classNames || [];
  const colourOf = (b) => classColour(Math.max(0, classNames.indexOf(b.className)));
  const result = h('div', { class: 'mt-2', id: 'model-try-result' });
  const conf = h('input', {
    type: 'number',
    class: 'form-control form-control-sm',
    id: 'model-try-conf',
    min: '0.05',
    max: '1',
    step: '0.05',
    value: '0.25',
  });
  const input = h('input', {
    type: 'file',
    class: 'form-control form-control-sm',
    id: 'model-try-file',
    accept: 'image/jpeg,image/png,image/webp',
  });
  let lastUrl = null;
  const run = async (file) => {
    if (!file) return;
    if (file.size > MAX_BYTES) {
      result.replaceChildren(h('p', { class: 'text-danger small', text: t('models.tryTooBig') }));
      return;
    }
    result.replaceChildren(h('p', { class: 'small text-body-secondary', text: t('models.trying') }));
    const c = Number(conf.value);
    const query = Number.isFinite(c) && c >= 0.01 && c <= 1 ? `?conf=${c}` : '';
    let r;
    try {
      r = await api(`/api/models/${encodeURIComponent(version.ref)}/try${query}`, {
        method: 'POST',
        body: file,
      });
    } catch (err) {
      result.replaceChildren();
      showError(err);
      return;
    }
    if (lastUrl) window.URL.revokeObjectURL(lastUrl);
    lastUrl = window.URL.createObjectURL(file);
    const boxes = r.detections.map((d) => ({ ...d, label: `${d.className} ${fmtNumber(d.score, 2)}` }));
    const found = new Map();
    for (const d of r.detections) found.set(d.className, (found.get(d.className) || 0) + 1);
    result.replaceChildren(
      h('p', {
        class: 'small mb-1',
        id: 'model-try-summary',
        text: t('models.tryFound', { n: r.detections.length, ms: fmtNumber(r.inferenceMs, 1) }),
      }),
      h(
        'div',
        { class: 'small mb-2', id: 'model-try-legend' },
        classNames.map((name) =>
          h(
            'span',
            { class: 'me-3 text-nowrap', dataset: { className: name } },
            swatch(classColour(classNames.indexOf(name))),
            `${name} ${found.get(name) || 0}`,
          ),
        ),
      ),
      drawBoxes(lastUrl, r.width, r.height, boxes, colourOf),
    );
  };
  input.addEventListener('change', () => void run(input.files && input.files[0]).catch(showError));
  const drop = h(
    'div',
    { class: 'border border-2 rounded p-3 text-center small text-body-secondary', id: 'model-try-drop' },
    t('models.tryDrop'),
  );
  drop.addEventListener('dragover', (ev) => ev.preventDefault());
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    void run(ev.dataTransfer && ev.dataTransfer.files[0]).catch(showError);
  });
  return h(
    'div',
    { class: 'card mt-3', id: 'model-try' },
    h(
      'div',
      { class: 'card-body' },
      h('h3', { class: 'h6', text: t('models.tryHeading') }),
      h('p', { class: 'small text-body-secondary', text: t('models.tryHelp') }),
      h(
        'div',
        { class: 'row g-2 align-items-end' },
        h(
          'div',
          { class: 'col-md-8' },
          h('label', { class: 'form-label small', for: 'model-try-file', text: t('models.tryPick') }),
          input,
        ),
        h(
          'div',
          { class: 'col-md-4' },
          h('label', { class: 'form-label small', for: 'model-try-conf', text: t('models.tryConf') }),
          conf,
        ),
      ),
      h('div', { class: 'mt-2' }, drop),
      result,
    ),
  );
}
