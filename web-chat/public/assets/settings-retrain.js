import { api, h, showError } from './api.js';
import { requestAndRun } from './actions.js';
import { t } from './i18n.js';
import { fmtNumber, table } from './results.js';

const read = async (tool, args = {}) =>
  (await api(`/api/tools/${tool}`, { method: 'POST', body: { args } })).output;

/** What fires a policy, as a person reads it. */
function triggerText(p) {
  const parts = [];
  if (p.minAcceptedSamples !== null)
    parts.push(t('retrain.whenSamples', { n: fmtNumber(p.minAcceptedSamples) }));
  if (p.confidenceDropOver !== null)
    parts.push(
      t('retrain.whenDrop', {
        drop: fmtNumber(p.confidenceDropOver.drop, 2),
        tag: p.confidenceDropOver.tag,
        hours: p.confidenceDropOver.windowHours,
      }),
    );
  return parts.join(t('retrain.or'));
}

/**
 * Settings → retrain policies and the proposals inbox: each model's policy, a form to set one and
 * "check now", both through approvals; the proposals the policies made, newest first, with their plans.
 */
export async function retrainSection(me) {
  const [{ policies }, { proposals }, { versions }] = await Promise.all([
    read('list_retrain_policies'),
    read('list_retrain_proposals', { limit: 20 }),
    api('/api/models?limit=200'),
  ]);
  const root = h('section', { class: 'mt-4', id: 'retrain-settings' });
  const box = h('div', { id: 'retrain-approval' });
  const redraw = async () => root.replaceWith(await retrainSection(me));
  const names = [...new Set(versions.map((v) => v.name))].sort();
  const num = (id, attrs) =>
    h('input', { class: 'form-control form-control-sm', type: 'number', id, ...attrs });
  const model = h(
    'select',
    { class: 'form-select form-select-sm', id: 'retrain-model' },
    names.map((n) => h('option', { value: n, text: n })),
  );
  const samples = num('retrain-samples', { min: '1', placeholder: '200' });
  const tag = h('input', { class: 'form-control form-control-sm', id: 'retrain-tag', placeholder: 'line-3' });
  const drop = num('retrain-drop', { min: '0.01', max: '1', step: '0.01', placeholder: '0.1' });
  const margin = num('retrain-margin', { min: '0', max: '1', step: '0.01', value: '0.01' });
  const field = (label, control) =>
    h('label', { class: 'd-flex flex-column small' }, h('span', { text: label }), control);
  const form = h(
    'form',
    {
      class: 'd-flex flex-wrap align-items-end gap-2 mb-2',
      id: 'retrain-form',
      onsubmit: (e) => {
        e.preventDefault();
        const args = {
          model: model.value,
          ...(Number(samples.value) ? { minAcceptedSamples: Number(samples.value) } : {}),
          ...(tag.value.trim() && Number(drop.value)
            ? { confidenceDropOver: { tag: tag.value.trim(), drop: Number(drop.value) } }
            : {}),
          minImprovement: Number(margin.value) || 0,
        };
        void requestAndRun(
          box,
          me,
          'set_retrain_policy',
          args,
          t('retrain.reason', { model: model.value }),
          redraw,
        ).catch(showError);
      },
    },
    field(t('retrain.model'), model),
    field(t('retrain.samples'), samples),
    field(t('retrain.tag'), tag),
    field(t('retrain.drop'), drop),
    field(t('retrain.margin'), margin),
    h('button', { class: 'btn btn-sm btn-primary', type: 'submit', text: t('retrain.set') }),
  );
  const check = h('button', {
    class: 'btn btn-sm btn-outline-secondary mb-2',
    type: 'button',
    id: 'retrain-check',
    text: t('retrain.checkNow'),
    onclick: () =>
      void requestAndRun(box, me, 'check_retrain_policies', {}, t('retrain.checkReason'), redraw).catch(
        showError,
      ),
  });
  const writer = me.user.role !== 'viewer';
  root.append(
    h('h2', { class: 'h5', text: t('retrain.heading') }),
    h('p', { class: 'small text-body-secondary', text: t('retrain.help') }),
    table(
      ['retrain.model', 'retrain.trigger', 'retrain.dataset', 'retrain.cooldown', 'retrain.margin'],
      policies.map((p) =>
        h(
          'tr',
          { dataset: { model: p.model } },
          h('td', {}, h('a', { href: `#models/${encodeURIComponent(p.model)}`, text: p.model })),
          h('td', { text: triggerText(p) }),
          h('td', { text: p.dataset || t('retrain.trainingDataset') }),
          h('td', { text: t('retrain.hours', { n: fmtNumber(p.cooldownHours) }) }),
          h('td', { text: fmtNumber(p.minImprovement, 2) }),
        ),
      ),
      { id: 'retrain-policies' },
    ),
    writer && names.length ? form : null,
    writer ? check : null,
    box,
    h('h3', { class: 'h6 mt-3', text: t('retrain.proposals') }),
    table(
      ['retrain.model', 'retrain.why', 'retrain.samplesCol', 'retrain.plan', 'retrain.when'],
      proposals.map((p) =>
        h(
          'tr',
          { dataset: { proposal: p.proposalId } },
          h('td', { text: p.model }),
          h('td', { class: 'small', text: p.reason }),
          h('td', { text: fmtNumber(p.samples) }),
          h(
            'td',
            {},
            h(
              'ol',
              { class: 'small mb-0 ps-3' },
              p.steps.map((s) => h('li', { text: s })),
            ),
          ),
          h('td', {
            class: 'small',
            text: new Date(p.createdAt).toLocaleString(document.documentElement.lang),
          }),
        ),
      ),
      { id: 'retrain-proposals' },
    ),
  );
  return root;
}
