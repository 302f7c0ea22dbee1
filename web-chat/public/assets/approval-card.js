import { api, h, showError, UiError } from './api.js';
import { t } from './i18n.js';
import { fmtNumber } from './results.js';

const HEADLINE = ['mAP50', 'mAP50_95', 'precision', 'recall'];

const ROLES = ['viewer', 'operator', 'approver', 'admin'];
const RISK_BADGE = { read: 'secondary', write: 'warning', critical: 'danger' };
let toolSchemas = null;

async function schemaOf(tool) {
  if (!toolSchemas) toolSchemas = (await api('/api/tools')).tools;
  const found = toolSchemas.find((x) => x.name === tool);
  return found ? found.inputSchema : { type: 'object', properties: {} };
}

/** A form generated from a tool's JSON schema, pre-filled with the current arguments. */
async function editForm(tool, args, onSubmit) {
  const schema = await schemaOf(tool);
  const props = schema.properties || {};
  const names = [...new Set([...Object.keys(props), ...Object.keys(args)])];
  const fields = names.map((name) => {
    const p = props[name] || {};
    const value = args[name];
    const id = `edit-${name}`;
    let input;
    if (Array.isArray(p.enum)) {
      input = h(
        'select',
        { class: 'form-select form-select-sm', id, name },
        p.enum.map((v) => h('option', { value: String(v), selected: v === value }, String(v))),
      );
    } else if (p.type === 'boolean') {
      input = h('input', { class: 'form-check-input', type: 'checkbox', id, name, checked: value === true });
    } else if (p.type === 'number' || p.type === 'integer') {
      input = h('input', {
        class: 'form-control form-control-sm',
        type: 'number',
        id,
        name,
        value: value === undefined ? '' : String(value),
        step: p.type === 'integer' ? '1' : 'any',
        min: p.minimum,
        max: p.maximum,
      });
    } else if (p.type === 'string') {
      input = h('input', {
        class: 'form-control form-control-sm',
        type: 'text',
        id,
        name,
        value: value === undefined ? '' : String(value),
      });
    } else {
      input = h(
        'textarea',
        { class: 'form-control form-control-sm font-monospace', id, name, rows: '3', dataset: { json: '1' } },
        value === undefined ? '' : JSON.stringify(value, null, 1),
      );
    }
    input.dataset.kind = p.type || 'json';
    return h(
      'div',
      { class: 'mb-2' },
      h(
        'label',
        { class: 'form-label small mb-0', for: id },
        h('code', { text: name }),
        p.description ? ` ${p.description}` : '',
      ),
      input,
    );
  });
  const form = h(
    'form',
    { class: 'edit-form border-top pt-2 mt-2' },
    fields,
    h('button', { class: 'btn btn-sm btn-primary', type: 'submit', text: t('approval.submitEdit') }),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const out = {};
    try {
      for (const el of form.querySelectorAll('[name]')) {
        const kind = el.dataset.kind;
        if (kind === 'boolean') out[el.name] = el.checked;
        else if (el.value === '') continue;
        else if (kind === 'number' || kind === 'integer') out[el.name] = Number(el.value);
        else if (el.dataset.json) {
          try {
            out[el.name] = JSON.parse(el.value);
          } catch {
            throw new UiError(t('approval.badJson', { field: el.name }), 'invalid_input', 400);
          }
        } else out[el.name] = el.value;
      }
    } catch (err) {
      showError(err);
      return;
    }
    void onSubmit(out);
  });
  return form;
}

function metricsTable(columns) {
  const keys = HEADLINE.filter((k) => columns.some((c) => typeof c.metrics[k] === 'number'));
  if (keys.length === 0) return null;
  const [candidate, ...serving] = columns;
  // with one serving model, a last column says what the candidate changes (green when it is better)
  const change = serving.length === 1 ? serving[0] : null;
  const delta = (k) => {
    const a = candidate.metrics[k];
    const b = change && change.metrics[k];
    if (typeof a !== 'number' || typeof b !== 'number') return h('td', { text: '–' });
    const d = a - b;
    return h('td', {
      class: d > 0 ? 'text-success' : d < 0 ? 'text-danger' : '',
      dataset: { delta: k },
      text: `${d > 0 ? '+' : ''}${fmtNumber(d)}`,
    });
  };
  return h(
    'table',
    { class: 'table table-sm mb-2 compare-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { text: t('approval.metric') }),
        columns.map((c) =>
          h(
            'th',
            {},
            h('a', { href: `#models/${encodeURIComponent(c.ref)}`, text: c.ref }),
            h('div', { class: 'small fw-normal text-body-secondary', text: c.role }),
          ),
        ),
        change ? h('th', { text: t('approval.change') }) : null,
      ),
    ),
    h(
      'tbody',
      {},
      keys.map((k) =>
        h(
          'tr',
          {},
          h('td', { text: k }),
          columns.map((c) =>
            h('td', {
              dataset: { metric: k },
              text: typeof c.metrics[k] === 'number' ? fmtNumber(c.metrics[k]) : '–',
            }),
          ),
          change ? delta(k) : null,
        ),
      ),
    ),
  );
}

/**
 * What an approver needs beside the exact arguments: the model version by name with its metrics and,
 * for a rollout, the model each targeted device runs now and how the candidate compares with it.
 */
async function approvalContext(a) {
  const args = a.args || {};
  if (typeof args.modelVersion !== 'string' || args.modelVersion.startsWith('$')) return null;
  const candidate = await api(`/api/models/${encodeURIComponent(args.modelVersion)}`);
  const parts = [
    h(
      'div',
      { class: 'small' },
      h('strong', { text: `${t('approval.model')}: ` }),
      h('a', {
        href: `#models/${encodeURIComponent(candidate.ref)}`,
        class: 'candidate-ref',
        text: candidate.ref,
      }),
    ),
  ];
  const columns = [{ ref: candidate.ref, role: t('approval.candidate'), metrics: candidate.metrics || {} }];
  const target = args.target || {};
  if (a.tool === 'start_rollout' && (target.tag || Array.isArray(target.devices))) {
    const { devices } = await api(
      `/api/devices${target.tag ? `?tag=${encodeURIComponent(target.tag)}` : ''}`,
    );
    const chosen = target.tag ? devices : devices.filter((d) => target.devices.includes(d.id));
    for (const ref of [...new Set(chosen.map((d) => d.model).filter(Boolean))]) {
      if (ref === candidate.ref) continue;
      const serving = await api(`/api/models/${encodeURIComponent(ref)}`).catch(() => null);
      if (serving)
        columns.push({ ref: serving.ref, role: t('approval.serving'), metrics: serving.metrics || {} });
    }
    parts.push(
      h('div', { class: 'small mt-1 fw-semibold', text: t('approval.changes', { n: chosen.length }) }),
      h(
        'ul',
        { class: 'small mb-2 device-changes' },
        chosen.map((d) =>
          h('li', {
            dataset: { device: d.id },
            text: `${d.name}: ${d.model || t('fleet.noModel')} → ${candidate.ref}`,
          }),
        ),
      ),
    );
  }
  const table = metricsTable(columns);
  if (table) parts.push(table);
  return parts;
}

/** An approval card: risk, tool, exact arguments, policy, who may approve; Approve / Edit / Reject. */
export function approvalCard(a, me, decide) {
  const policy = a.policy || {};
  const mayDecide =
    me &&
    ROLES.indexOf(me.user.role) >= ROLES.indexOf(policy.minRole || 'operator') &&
    me.user.role !== 'viewer';
  const run = async (decision) => {
    try {
      buttons.querySelectorAll('button').forEach((b) => (b.disabled = true));
      await decide(decision);
    } catch (err) {
      buttons.querySelectorAll('button').forEach((b) => (b.disabled = false));
      showError(err);
    }
  };
  const rejectBox = h(
    'form',
    { class: 'reject-form d-none mt-2' },
    h('label', { class: 'form-label small', for: `reject-${a.id}`, text: t('approval.rejectReason') }),
    h('input', {
      class: 'form-control form-control-sm mb-2',
      id: `reject-${a.id}`,
      name: 'reason',
      required: true,
    }),
    h('button', { class: 'btn btn-sm btn-danger', type: 'submit', text: t('approval.reject') }),
  );
  rejectBox.addEventListener('submit', (e) => {
    e.preventDefault();
    const reason = rejectBox.querySelector('input').value.trim();
    if (reason) void run({ decision: 'reject', reason });
  });
  const editArea = h('div', { class: 'edit-area' });
  const buttons = h(
    'div',
    { class: 'd-flex gap-2 mt-2 approval-buttons' },
    h('button', {
      class: 'btn btn-success btn-sm',
      type: 'button',
      'data-action': 'approve',
      text: t('approval.approve'),
      onclick: () => void run({ decision: 'approve' }),
    }),
    h('button', {
      class: 'btn btn-outline-secondary btn-sm',
      type: 'button',
      'data-action': 'edit',
      text: t('approval.edit'),
      onclick: async () => {
        try {
          editArea.replaceChildren(
            await editForm(a.tool, a.args || {}, (args) => run({ decision: 'edit', args })),
          );
        } catch (err) {
          showError(err);
        }
      },
    }),
    h('button', {
      class: 'btn btn-outline-danger btn-sm',
      type: 'button',
      'data-action': 'reject',
      text: t('approval.reject'),
      onclick: () => rejectBox.classList.toggle('d-none'),
    }),
  );
  const context = h('div', { class: 'approval-context mt-2' });
  approvalContext(a).then(
    (parts) => parts && context.replaceChildren(...parts),
    () => undefined,
  );
  const decided = a.decision
    ? h('div', {
        class: 'small mt-2',
        text: t('approval.decided', { status: t(`status.${a.status}`), name: a.decision.by.name }),
      })
    : null;
  return h(
    'div',
    {
      class: `card mb-3 approval-card border-${RISK_BADGE[a.risk] || 'secondary'}`,
      dataset: { approval: a.id, risk: a.risk },
    },
    h(
      'div',
      { class: 'card-header d-flex justify-content-between' },
      h('span', { text: t('approval.heading') }),
      h('span', {
        class: `badge text-bg-${RISK_BADGE[a.risk] || 'secondary'} risk`,
        text: t(`approval.risk.${a.risk}`),
      }),
    ),
    h(
      'div',
      { class: 'card-body' },
      h(
        'div',
        { class: 'small' },
        h('strong', { text: `${t('approval.tool')}: ` }),
        h('code', { class: 'tool', text: a.tool }),
      ),
      h('div', { class: 'small' }, h('strong', { text: `${t('approval.reason')}: ` }), a.reason || ''),
      context,
      h('div', { class: 'small mt-2 fw-semibold', text: t('approval.args') }),
      h('pre', { class: 'args bg-body-tertiary p-2 rounded', text: JSON.stringify(a.args, null, 2) }),
      h(
        'div',
        { class: 'small' },
        h('strong', { text: `${t('approval.policy')}: ` }),
        t('approval.whoMay', { role: t(`role.${policy.minRole || 'operator'}`) }),
        ' ',
        t(policy.selfApproval === false ? 'approval.selfForbidden' : 'approval.selfAllowed'),
      ),
      a.requester
        ? h('div', {
            class: 'small text-body-secondary',
            text: t('approval.requestedBy', { name: a.requester.name }),
          })
        : null,
      decided,
      a.status === 'pending'
        ? mayDecide
          ? [buttons, rejectBox, editArea]
          : h('div', {
              class: 'alert alert-secondary small mt-2 mb-0 cannot-approve',
              text: t('approval.cannot', { role: t(`role.${me ? me.user.role : 'viewer'}`) }),
            })
        : null,
    ),
  );
}
