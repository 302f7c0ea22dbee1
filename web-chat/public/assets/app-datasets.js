import { api, h } from './api.js';
import { trainForm } from './actions.js';
import { guard } from './app-governance.js';
import { datasetView } from './dataset-view.js';
import { t } from './i18n.js';
import { uploadCard } from './upload.js';

/** The datasets page: the upload card once, and the datasets (filtered by `q`), each opening its page. */
export async function loadDatasets(me, q = '') {
  const slot = document.getElementById('dataset-upload-slot');
  if (!slot.firstChild)
    slot.append(
      uploadCard(me, async (ref) => {
        await loadDatasets(me);
        await showDataset(me, ref.split('@')[0]);
      }),
    );
  const { datasets } = await api(`/api/datasets${q ? `?q=${encodeURIComponent(q)}` : ''}`);
  const list = document.getElementById('dataset-list');
  list.replaceChildren(
    ...(datasets.length
      ? datasets.map((d) =>
          h(
            'li',
            {
              class: 'list-group-item list-group-item-action',
              role: 'button',
              onclick: () => guard(() => showDataset(me, d.name)),
            },
            h('div', { class: 'fw-semibold', text: d.name }),
            h('div', {
              class: 'small text-body-secondary',
              text: `${t('datasets.images', { n: d.images })} · ${t('datasets.boxes', { n: d.boxes })}`,
            }),
          ),
        )
      : [h('li', { class: 'list-group-item text-body-secondary', text: t('common.none') })]),
  );
}

/** One dataset's page: its version, samples and, for those who may, the Train form. */
export async function showDataset(me, ref) {
  const detail = document.getElementById('dataset-detail');
  await datasetView(detail, document.getElementById('dataset-samples'), ref);
  // the version trained on is the one picked in the version picker when the form is sent; a live
  // refresh of the same dataset keeps the form, and what is typed in it
  const slot = document.getElementById('dataset-actions');
  const name = detail.dataset.ref.split('@')[0];
  if (me.user.role === 'viewer') slot.replaceChildren();
  else if (slot.dataset.dataset !== name) {
    slot.dataset.dataset = name;
    slot.replaceChildren(trainForm(me, () => detail.dataset.ref));
  }
}
