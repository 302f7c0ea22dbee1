import { api, h, showError } from './api.js';
import { requestAndRun } from './actions.js';
import { t } from './i18n.js';
import { fmtNumber } from './results.js';

const RETRIES = 5;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A dataset name from a file or folder name: lower case, digits, ".", "_" and "-". */
function nameFrom(raw) {
  const n = raw
    .replace(/\.zip$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64);
  return n || 'uploaded';
}

/** Every file under a dropped folder entry, with its path inside the drop (webkitGetAsEntry). */
async function filesOfEntry(entry) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, path: entry.fullPath.replace(/^\//, '') }];
  }
  const reader = entry.createReader();
  const out = [];
  // readEntries answers in batches until it answers none
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) out.push(...(await filesOfEntry(child)));
  }
  return out;
}

/** The files of a drop: one zip, or the files of the folders dropped. */
async function filesOfDrop(dataTransfer) {
  const entries = [...dataTransfer.items]
    .map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (entries.length) return (await Promise.all(entries.map(filesOfEntry))).flat();
  return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
}

/** Sends one file from `from`, chunk by chunk; after an error it asks the server where it stands and resumes there. */
async function sendFile(id, item, from, chunkBytes, onBytes) {
  let offset = from;
  let failures = 0;
  while (offset < item.file.size) {
    const q = new URLSearchParams({ path: item.path, offset: String(offset) });
    try {
      const r = await api(`/api/uploads/${encodeURIComponent(id)}/chunk?${q}`, {
        method: 'POST',
        body: item.file.slice(offset, offset + chunkBytes),
      });
      onBytes(r.received - offset);
      offset = r.received;
    } catch (err) {
      failures += 1;
      if (
        failures > RETRIES ||
        (err.status >= 400 && err.status < 500 && ![408, 409, 429].includes(err.status))
      )
        throw err;
      await sleep(300 * failures);
      const status = await api(`/api/uploads/${encodeURIComponent(id)}`);
      const now = status.files.find((f) => f.path === item.path).received;
      onBytes(now - offset);
      offset = now;
    }
  }
}

/**
 * The Datasets page's upload card: drop a zip or a folder (or pick one), name the dataset, send it
 * in resumable chunks with progress, then import it through an approval of import_dataset and show
 * the validation report.
 */
export function uploadCard(me, onImported) {
  if (!me || me.user.role === 'viewer') return h('div');
  let items = [];
  const name = h('input', {
    class: 'form-control form-control-sm',
    id: 'upload-name',
    autocomplete: 'off',
    placeholder: t('upload.name'),
    'aria-label': t('upload.name'),
  });
  const chosen = h('div', {
    class: 'small text-body-secondary',
    id: 'upload-chosen',
    text: t('upload.none'),
  });
  const bar = h('div', { class: 'progress-bar', id: 'upload-bar' });
  const progress = h(
    'div',
    {
      class: 'progress my-2 d-none',
      id: 'upload-progress',
      role: 'progressbar',
      'aria-valuemin': '0',
      'aria-valuemax': '100',
    },
    bar,
  );
  const status = h('div', { class: 'small', id: 'upload-status' });
  const approval = h('div', { id: 'upload-approval' });
  const report = h('div', { id: 'upload-report' });
  const start = h('button', {
    class: 'btn btn-sm btn-primary',
    type: 'button',
    id: 'upload-start',
    disabled: true,
    text: t('upload.start'),
    onclick: () => void run().catch(fail),
  });
  const choose = (list) => {
    items = list.filter((i) => !i.path.split('/').some((s) => s.startsWith('.')));
    const zips = items.filter((i) => /\.zip$/i.test(i.path));
    if (zips.length === 1 && items.length > 1) items = zips;
    const bytes = items.reduce((s, i) => s + i.file.size, 0);
    chosen.textContent = items.length
      ? t('upload.chosen', { n: fmtNumber(items.length), mb: fmtNumber(bytes / 1024 ** 2, 1) })
      : t('upload.none');
    if (items.length && !name.value.trim()) name.value = nameFrom(items[0].path.split('/')[0]);
    start.disabled = items.length === 0;
  };
  const setProgress = (done, total) => {
    const pct = total ? Math.floor((100 * done) / total) : 100;
    bar.style.width = `${pct}%`;
    progress.setAttribute('aria-valuenow', String(pct));
    status.textContent = t('upload.progress', {
      done: fmtNumber(done / 1024 ** 2, 1),
      total: fmtNumber(total / 1024 ** 2, 1),
      pct,
    });
  };
  const fail = (err) => {
    start.disabled = items.length === 0;
    status.textContent = t('upload.failed');
    showError(err);
  };
  async function run() {
    const dataset = name.value.trim();
    start.disabled = true;
    report.replaceChildren();
    const files = items.map((i) => ({ path: i.path, size: i.file.size }));
    // the same files picked again after a failure resume the upload they started
    const key = `via.upload.${JSON.stringify(files)}`;
    let up = null;
    const earlier = window.sessionStorage.getItem(key);
    if (earlier) up = await api(`/api/uploads/${encodeURIComponent(earlier)}`).catch(() => null);
    if (!up) up = await api('/api/uploads', { method: 'POST', body: { files } });
    window.sessionStorage.setItem(key, up.id);
    progress.classList.remove('d-none');
    let done = up.received;
    setProgress(done, up.bytes);
    for (const item of items) {
      const from = up.files.find((f) => f.path === item.path).received;
      await sendFile(up.id, item, from, up.chunkBytes, (n) => setProgress((done += n), up.bytes));
    }
    status.textContent = t('upload.unpacking');
    const finished = await api(`/api/uploads/${encodeURIComponent(up.id)}/finish`, { method: 'POST' });
    window.sessionStorage.removeItem(key);
    status.textContent = t('upload.uploaded', { n: fmtNumber(finished.files) });
    await requestAndRun(
      approval,
      me,
      'import_dataset',
      { source: finished.source, name: dataset },
      t('upload.reason', { name: dataset }),
      async (out) => {
        status.textContent = t('upload.imported', { ref: out.ref });
        report.replaceChildren(
          h('div', {
            class: `alert ${out.errors ? 'alert-warning' : 'alert-success'} small py-2 mb-2`,
            text: t('upload.summary', {
              ref: out.ref,
              images: fmtNumber(out.images),
              boxes: fmtNumber(out.boxes),
              errors: fmtNumber(out.errors),
              warnings: fmtNumber(out.warnings),
            }),
          }),
          h('pre', { class: 'small bg-body-tertiary p-2 rounded upload-report', text: out.report }),
        );
        items = [];
        choose([]);
        if (onImported) await onImported(out.ref);
      },
    );
  }
  const fileInput = h('input', {
    type: 'file',
    class: 'form-control form-control-sm',
    id: 'upload-file',
    accept: '.zip,application/zip',
    'aria-label': t('upload.pickZip'),
    onchange: (e) => choose([...e.target.files].map((file) => ({ file, path: file.name }))),
  });
  const folderInput = h('input', {
    type: 'file',
    class: 'form-control form-control-sm',
    id: 'upload-folder',
    webkitdirectory: true,
    multiple: true,
    'aria-label': t('upload.pickFolder'),
    onchange: (e) =>
      choose([...e.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }))),
  });
  const drop = h(
    'div',
    {
      class: 'upload-drop border border-2 rounded p-3 text-center small mb-2',
      id: 'upload-drop',
      ondragover: (e) => {
        e.preventDefault();
        drop.classList.add('border-primary');
      },
      ondragleave: () => drop.classList.remove('border-primary'),
      ondrop: (e) => {
        e.preventDefault();
        drop.classList.remove('border-primary');
        void filesOfDrop(e.dataTransfer).then(choose, showError);
      },
    },
    t('upload.drop'),
  );
  return h(
    'div',
    { class: 'card mb-3', id: 'dataset-upload' },
    h('div', { class: 'card-header small', text: t('upload.heading') }),
    h(
      'div',
      { class: 'card-body' },
      drop,
      h(
        'div',
        { class: 'row g-2 mb-2' },
        h('div', { class: 'col-sm-6' }, h('label', { class: 'small', text: t('upload.pickZip') }), fileInput),
        h(
          'div',
          { class: 'col-sm-6' },
          h('label', { class: 'small', text: t('upload.pickFolder') }),
          folderInput,
        ),
      ),
      chosen,
      h('div', { class: 'd-flex gap-2 mt-2' }, name, start),
      progress,
      status,
      approval,
      report,
    ),
  );
}
