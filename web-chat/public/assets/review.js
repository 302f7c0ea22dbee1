import { api, h, showError, showInfo } from './api.js';
import { classColour } from './dataset-view.js';
import { t } from './i18n.js';
import { requestAndRun } from './actions.js';
import { badge, fmtNumber } from './results.js';

const HANDLE = 8;
const MIN_SIZE = 4;

/**
 * A box editor on a canvas: boxes in image pixels; drag on empty space draws a box of the current
 * class, drag inside a box moves it, drag a corner resizes it; Delete removes the selected box,
 * 1–9 relabel it. `onChange` hears every change.
 */
export function boxEditor(url, width, height, initial, classNames, onChange = () => {}) {
  const canvas = h('canvas', {
    class: 'review-canvas',
    width: String(width),
    height: String(height),
    tabindex: '0',
  });
  const state = {
    boxes: initial.map((b) => ({ ...b })),
    selected: initial.length ? 0 : -1,
    cls: classNames[0] || 'object',
    drag: null,
  };
  const img = new Image();
  const colour = (name) => classColour(Math.max(0, classNames.indexOf(name)));
  const draw = () => {
    const g = canvas.getContext('2d');
    g.clearRect(0, 0, width, height);
    if (img.complete && img.naturalWidth) g.drawImage(img, 0, 0, width, height);
    g.font = `${Math.max(12, width / 45)}px sans-serif`;
    state.boxes.forEach((b, i) => {
      g.lineWidth = i === state.selected ? Math.max(3, width / 150) : Math.max(2, width / 250);
      g.strokeStyle = colour(b.className);
      g.strokeRect(b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1);
      g.fillStyle = colour(b.className);
      g.fillText(b.className, b.x1 + 3, Math.max(12, b.y1 - 3));
      if (i === state.selected)
        for (const [x, y] of corners(b)) g.fillRect(x - HANDLE / 2, y - HANDLE / 2, HANDLE, HANDLE);
    });
    canvas.dataset.boxes = String(state.boxes.length);
  };
  const changed = () => {
    draw();
    onChange(state);
  };
  img.onload = draw;
  img.src = url;
  const corners = (b) => [
    [b.x1, b.y1],
    [b.x2, b.y1],
    [b.x1, b.y2],
    [b.x2, b.y2],
  ];
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * width) / r.width, ((e.clientY - r.top) * height) / r.height];
  };
  const clamp = (v, max) => Math.min(max, Math.max(0, v));
  canvas.addEventListener('pointerdown', (e) => {
    canvas.focus();
    const [x, y] = at(e);
    const tol = (HANDLE * width) / canvas.getBoundingClientRect().width;
    const sel = state.boxes[state.selected];
    const corner = sel
      ? corners(sel).findIndex(([cx, cy]) => Math.abs(cx - x) <= tol && Math.abs(cy - y) <= tol)
      : -1;
    if (corner >= 0) state.drag = { kind: 'resize', corner, start: [x, y], box: { ...sel } };
    else {
      const hit = state.boxes.findLastIndex((b) => x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2);
      if (hit >= 0) {
        state.selected = hit;
        state.drag = { kind: 'move', start: [x, y], box: { ...state.boxes[hit] } };
      } else {
        state.boxes.push({ className: state.cls, x1: x, y1: y, x2: x, y2: y });
        state.selected = state.boxes.length - 1;
        state.drag = { kind: 'draw', start: [x, y] };
      }
    }
    canvas.setPointerCapture(e.pointerId);
    draw();
  });
  canvas.addEventListener('pointermove', (e) => {
    const d = state.drag;
    if (!d) return;
    const [x, y] = at(e);
    const b = state.boxes[state.selected];
    if (d.kind === 'draw')
      Object.assign(b, {
        x1: Math.min(d.start[0], x),
        y1: Math.min(d.start[1], y),
        x2: Math.max(d.start[0], x),
        y2: Math.max(d.start[1], y),
      });
    else if (d.kind === 'move') {
      // the whole box stays inside the image
      const dx = Math.max(-d.box.x1, Math.min(width - d.box.x2, x - d.start[0]));
      const dy = Math.max(-d.box.y1, Math.min(height - d.box.y2, y - d.start[1]));
      Object.assign(b, { x1: d.box.x1 + dx, x2: d.box.x2 + dx, y1: d.box.y1 + dy, y2: d.box.y2 + dy });
    } else {
      const nx = clamp(x, width);
      const ny = clamp(y, height);
      const c = d.corner;
      Object.assign(b, {
        x1: c % 2 === 0 ? nx : d.box.x1,
        x2: c % 2 === 1 ? nx : d.box.x2,
        y1: c < 2 ? ny : d.box.y1,
        y2: c >= 2 ? ny : d.box.y2,
      });
      if (b.x1 > b.x2) [b.x1, b.x2] = [b.x2, b.x1];
      if (b.y1 > b.y2) [b.y1, b.y2] = [b.y2, b.y1];
    }
    draw();
  });
  const end = () => {
    if (!state.drag) return;
    const b = state.boxes[state.selected];
    // a click without a drag does not leave a zero-sized box behind
    if (state.drag.kind === 'draw' && (b.x2 - b.x1 < MIN_SIZE || b.y2 - b.y1 < MIN_SIZE)) {
      state.boxes.splice(state.selected, 1);
      state.selected = -1;
    }
    state.drag = null;
    changed();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('keydown', (e) => {
    if ((e.key === 'Delete' || e.key === 'Backspace') && state.selected >= 0) {
      state.boxes.splice(state.selected, 1);
      state.selected = Math.min(state.selected, state.boxes.length - 1);
      e.preventDefault();
      changed();
    } else if (/^[1-9]$/.test(e.key) && classNames[Number(e.key) - 1]) {
      const name = classNames[Number(e.key) - 1];
      state.cls = name;
      if (state.selected >= 0) state.boxes[state.selected].className = name;
      e.preventDefault();
      changed();
    } else if (e.key === 'Tab' && state.boxes.length) {
      state.selected = (state.selected + 1) % state.boxes.length;
      e.preventDefault();
      draw();
    }
  });
  return {
    canvas,
    state,
    setClass(name) {
      state.cls = name;
      if (state.selected >= 0) state.boxes[state.selected].className = name;
      changed();
    },
  };
}

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
