import { api, h, showError, showInfo } from './api.js';
import { boxEditor } from './box-editor.js';
import { t } from './i18n.js';
import { requestAndRun } from './actions.js';
import { badge, fmtNumber } from './results.js';

/** The feedback review page: a filtered queue with thumbnails, the box editor, accept/reject with auto-advance, and "make a dataset version". */
let lastFilters = {};

export async function reviewPage(me, filters = lastFilters) {
  lastFilters = { ...filters, open: undefined };
  const listEl = document.getElementById('feedback-list');
  const detail = document.getElementById('feedback-detail');
  const { items } = await api('/api/feedback?status=pending&limit=100');
  const devices = [...new Set(items.map((s) => s.deviceId))].sort();
  const models = [...new Set(items.map((s) => s.modelName).filter(Boolean))].sort();
  const reasons = [...new Set(items.map((s) => s.reason))].sort();
  const maxConf = typeof filters.maxConfidence === 'number' ? filters.maxConfidence : 1;
  const queue = items.filter(
    (s) =>
      (!filters.device || s.deviceId === filters.device) &&
      (!filters.model || s.modelName === filters.model) &&
      (!filters.reason || s.reason === filters.reason) &&
      (s.topConfidence === null || s.topConfidence <= maxConf),
  );
  const select = (id, label, values, current, key) =>
    h(
      'select',
      {
        class: 'form-select form-select-sm',
        id,
        'aria-label': t(label),
        onchange: (e) => void reviewPage(me, { ...filters, [key]: e.target.value }).catch(showError),
      },
      [
        h('option', { value: '', text: t(label) }),
        ...values.map((v) =>
          h('option', {
            value: v,
            selected: v === current,
            text: key === 'reason' ? t(`feedback.reason.${v}`) : v,
          }),
        ),
      ],
    );
  const conf = h('input', {
    class: 'form-range',
    type: 'range',
    id: 'feedback-confidence',
    min: '0',
    max: '1',
    step: '0.05',
    value: String(maxConf),
    'aria-label': t('feedback.maxConfidence'),
    onchange: (e) =>
      void reviewPage(me, { ...filters, maxConfidence: Number(e.target.value) }).catch(showError),
  });
  // outside the list, so that a refresh of the queue (new samples arriving) keeps a pending approval card
  const box = document.getElementById('feedback-actions');
  const toDataset = h('button', {
    class: 'btn btn-sm btn-outline-primary',
    type: 'button',
    id: 'feedback-to-dataset',
    text: t('feedback.toDataset'),
    onclick: () =>
      void (async () => {
        const { datasets } = await api('/api/datasets');
        const name = window.prompt(t('feedback.toDatasetWhich'), datasets[0] ? datasets[0].name : '');
        if (!name) return;
        await requestAndRun(
          box,
          me,
          'feedback_to_dataset',
          { dataset: name.trim(), note: t('feedback.toDatasetNote') },
          t('feedback.toDatasetNote'),
          (out) => showInfo(t('feedback.toDatasetDone', { ref: out.ref, n: out.samples })),
        );
      })().catch(showError),
  });
  listEl.replaceChildren(
    h(
      'li',
      { class: 'list-group-item' },
      h(
        'div',
        { class: 'row g-1' },
        h(
          'div',
          { class: 'col-6' },
          select('feedback-device', 'feedback.allDevices', devices, filters.device, 'device'),
        ),
        h(
          'div',
          { class: 'col-6' },
          select('feedback-model', 'feedback.allModels', models, filters.model, 'model'),
        ),
        h(
          'div',
          { class: 'col-12' },
          select('feedback-reason', 'feedback.allReasons', reasons, filters.reason, 'reason'),
        ),
      ),
      h('label', {
        class: 'small mt-1',
        for: 'feedback-confidence',
        text: t('feedback.confidenceAtMost', { value: fmtNumber(maxConf, 2) }),
      }),
      conf,
      h(
        'div',
        { class: 'd-flex justify-content-between align-items-center' },
        h('span', {
          class: 'small text-body-secondary',
          id: 'feedback-count',
          text: t('feedback.waiting', { n: queue.length }),
        }),
        me.user.role !== 'viewer' ? toDataset : null,
      ),
      box,
    ),
    ...(queue.length
      ? queue.map((s) => {
          const thumb = h('img', {
            class: 'feedback-thumb me-2 rounded',
            alt: '',
            width: '64',
            height: '48',
          });
          void api(`/api/feedback/${encodeURIComponent(s.id)}`).then(
            (x) => (thumb.src = x.url),
            () => undefined,
          );
          return h(
            'li',
            {
              class: 'list-group-item list-group-item-action d-flex align-items-center',
              role: 'button',
              dataset: { sample: s.id },
              onclick: () => void showSample(s.id).catch(showError),
            },
            thumb,
            h(
              'div',
              {},
              h('div', { class: 'small', text: `${s.deviceId} · ${s.modelName || '–'}` }),
              h(
                'div',
                { class: 'small text-body-secondary' },
                badge(s.reason),
                typeof s.topConfidence === 'number'
                  ? t('feedback.confidence', { value: fmtNumber(s.topConfidence, 2) })
                  : '',
              ),
            ),
          );
        })
      : [h('li', { class: 'list-group-item text-body-secondary', text: t('feedback.empty') })]),
  );

  async function showSample(id) {
    for (const li of listEl.querySelectorAll('[data-sample]'))
      li.classList.toggle('active', li.dataset.sample === id);
    const s = await api(`/api/feedback/${encodeURIComponent(id)}`);
    const classNames = [
      ...new Set([...(s.predictions || []).map((p) => p.className), ...(await classesOf(s))]),
    ];
    const editor = boxEditor(
      s.url,
      s.width,
      s.height,
      (s.predictions || []).map((p) => ({
        className: p.className,
        x1: p.box[0],
        y1: p.box[1],
        x2: p.box[2],
        y2: p.box[3],
      })),
      classNames,
    );
    const next = () => {
      const i = queue.findIndex((x) => x.id === id);
      queue.splice(i, 1);
      document.getElementById('feedback-count').textContent = t('feedback.waiting', { n: queue.length });
      listEl.querySelector(`[data-sample="${window.CSS.escape(id)}"]`)?.remove();
      if (queue[i] || queue[0]) void showSample((queue[i] || queue[0]).id).catch(showError);
      else
        detail.replaceChildren(
          h('p', { class: 'text-body-secondary', id: 'feedback-done', text: t('feedback.allDone') }),
        );
    };
    const review = async (body) => {
      // review_feedback is a write tool (reviews become training data): the click asks for an approval of these
      // exact arguments, approves it (a write's requester may approve their own), then runs it with that approval.
      const args = { sampleId: id, ...body };
      const approval = await api('/api/approvals', {
        method: 'POST',
        body: { tool: 'review_feedback', args, reason: `review of feedback sample ${id} in the web app` },
      });
      await api(`/api/approvals/${encodeURIComponent(approval.id)}/decide`, {
        method: 'POST',
        body: { decision: 'approve', reason: 'reviewed in the web app' },
      });
      await api(`/api/feedback/${encodeURIComponent(id)}/review`, {
        method: 'POST',
        body: { ...body, approvalId: approval.id },
      });
      next();
    };
    const accept = () =>
      review({
        decision: 'accept',
        boxes: editor.state.boxes.map((b) => ({
          className: b.className,
          x1: b.x1 / s.width,
          y1: b.y1 / s.height,
          x2: b.x2 / s.width,
          y2: b.y2 / s.height,
        })),
      }).catch(showError);
    const reason = h('input', {
      class: 'form-control form-control-sm',
      id: 'feedback-reject-reason',
      'aria-label': t('feedback.rejectReason'),
      placeholder: t('feedback.rejectReason'),
    });
    const classSelect = h(
      'select',
      {
        class: 'form-select form-select-sm w-auto',
        id: 'feedback-class',
        'aria-label': t('feedback.class'),
        onchange: (e) => editor.setClass(e.target.value),
      },
      classNames.map((c, i) => h('option', { value: c, text: `${i + 1} · ${c}` })),
    );
    editor.canvas.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        accept();
      } else if (e.key === 'ArrowRight' || e.key === 'n') {
        const i = queue.findIndex((x) => x.id === id);
        const other = queue[i + 1] || queue[0];
        if (other && other.id !== id) void showSample(other.id).catch(showError);
      }
    });
    detail.replaceChildren(
      h(
        'div',
        { class: 'd-flex flex-wrap gap-2 align-items-center mb-2' },
        h('span', {
          class: 'small',
          text: `${s.deviceId} · ${s.modelName || '–'} · ${fmtTimeShort(s.capturedAt)}`,
        }),
        badge(s.reason),
        h('span', {
          class: 'small',
          text:
            typeof s.topConfidence === 'number'
              ? t('feedback.confidence', { value: fmtNumber(s.topConfidence, 2) })
              : '',
        }),
      ),
      editor.canvas,
      h('div', { class: 'small text-body-secondary my-1', text: t('feedback.keys') }),
      h(
        'div',
        { class: 'd-flex flex-wrap gap-2 align-items-center mb-2' },
        h('label', { class: 'small', for: 'feedback-class', text: t('feedback.class') }),
        classSelect,
        h('button', {
          class: 'btn btn-success btn-sm',
          type: 'button',
          id: 'feedback-accept',
          text: t('feedback.acceptBoxes'),
          onclick: accept,
        }),
      ),
      h(
        'form',
        {
          class: 'd-flex gap-2',
          onsubmit: (e) => {
            e.preventDefault();
            if (reason.value.trim())
              void review({ decision: 'reject', reason: reason.value.trim() }).catch(showError);
          },
        },
        reason,
        h('button', {
          class: 'btn btn-outline-danger btn-sm text-nowrap',
          type: 'submit',
          id: 'feedback-reject',
          text: t('feedback.reject'),
        }),
      ),
    );
    editor.canvas.focus();
  }

  if (filters.open) await showSample(filters.open);
  return { showSample };
}

async function classesOf(sample) {
  if (!sample.modelVersionId) return [];
  const v = await api(`/api/models/${encodeURIComponent(sample.modelVersionId)}`).catch(() => null);
  return v ? v.classNames || [] : [];
}

function fmtTimeShort(ms) {
  return ms ? new Date(ms).toLocaleString(document.documentElement.lang) : '';
}
