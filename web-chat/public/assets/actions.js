import { api, h, showError, showInfo } from './api.js';
import { approvalCard } from './approval-card.js';
import { t } from './i18n.js';

/**
 * Asks for an approval of one exact tool call, shows its card in `box` and, once it is approved
 * here, runs the tool with that approval (the only way the pages change anything).
 */
export async function requestAndRun(box, me, tool, args, reason, onDone) {
  const approval = await api('/api/approvals', { method: 'POST', body: { tool, args, reason } });
  const run = async () => {
    const { output } = await api(`/api/tools/${encodeURIComponent(tool)}`, {
      method: 'POST',
      body: { args, approvalId: approval.id },
    });
    box.replaceChildren();
    showInfo(t('actions.done', { what: t(`actions.${tool}`) }));
    if (onDone) await onDone(output);
  };
  box.replaceChildren(
    h('div', { class: 'small text-body-secondary mb-1', text: t('actions.asked') }),
    approvalCard(
      { ...approval, args: approval.approvedArgs ?? args, requester: null },
      me,
      async (decision) => {
        const decided = await api(`/api/approvals/${encodeURIComponent(approval.id)}/decide`, {
          method: 'POST',
          body: decision,
        });
        if (decided.status === 'approved') await run();
        else box.replaceChildren();
      },
    ),
  );
}

/** A small button that names its action in `data-action` (tests and people find it by that). */
export function actionButton(text, cls, onclick, dataAction) {
  return h('button', {
    class: `btn btn-sm ${cls}`,
    type: 'button',
    dataset: { action: dataAction },
    text,
    onclick,
  });
}

const field = (label, control) =>
  h('label', { class: 'd-flex flex-column small' }, h('span', { text: label }), control);

/**
 * An inline form: its controls, and a submit button that asks for an approval of `tool` with the
 * arguments `argsOf()` builds from them; the card appears in `box`.
 */
export function actionForm(box, me, { id, tool, submit, controls, argsOf, reason, onDone }) {
  return h(
    'form',
    {
      class: 'd-flex flex-wrap align-items-end gap-2 mb-2',
      id,
      onsubmit: (e) => {
        e.preventDefault();
        void requestAndRun(box, me, tool, argsOf(), reason(), onDone).catch(showError);
      },
    },
    controls,
    h('button', { class: 'btn btn-sm btn-primary', type: 'submit', dataset: { action: tool }, text: submit }),
  );
}

/** "Train a model" on the dataset version `refOf()` names: epochs, trainer, model name; opens the job once started. */
export function trainForm(me, refOf) {
  const ref = refOf();
  const box = h('div', { class: 'train-approval' });
  const epochs = h('input', {
    class: 'form-control form-control-sm',
    type: 'number',
    min: '1',
    max: '1000',
    value: '10',
    id: 'train-epochs',
  });
  const backend = h(
    'select',
    { class: 'form-select form-select-sm', id: 'train-backend' },
    ['builtin', 'ultralytics', 'yolox'].map((b) => h('option', { value: b, text: t(`train.backend.${b}`) })),
  );
  const imgsz = h('input', {
    class: 'form-control form-control-sm',
    type: 'number',
    min: '32',
    max: '2048',
    step: '32',
    id: 'train-imgsz',
    placeholder: t('train.imgszDefault'),
  });
  const name = h('input', {
    class: 'form-control form-control-sm',
    id: 'train-name',
    placeholder: ref.split('@')[0],
    autocomplete: 'off',
  });
  return h(
    'div',
    { class: 'border rounded p-2 mb-3', id: 'dataset-train' },
    h('h3', { class: 'h6', text: t('train.heading') }),
    actionForm(box, me, {
      id: 'train-form',
      tool: 'start_training',
      submit: t('train.start'),
      controls: [
        field(t('train.epochs'), epochs),
        field(t('train.backend'), backend),
        field(t('train.imgsz'), imgsz),
        field(t('train.name'), name),
      ],
      argsOf: () => ({
        dataset: refOf(),
        epochs: Number(epochs.value) || 10,
        backend: backend.value,
        ...(Number(imgsz.value) ? { imgsz: Number(imgsz.value) } : {}),
        ...(name.value.trim() ? { name: name.value.trim() } : {}),
      }),
      reason: () => t('train.reason', { dataset: refOf() }),
      onDone: (out) => {
        location.hash = `#jobs/${encodeURIComponent(out.jobId)}`;
      },
    }),
    box,
  );
}

/** Evaluate, promote and deploy one model version, each through its approval. */
export function modelActions(me, v, { tags, onChange }) {
  const box = h('div', { class: 'model-approval' });
  const split = h(
    'select',
    { class: 'form-select form-select-sm', id: 'evaluate-split' },
    ['test', 'val', 'train'].map((s) => h('option', { value: s, text: t(`datasets.split.${s}`) })),
  );
  const stage = h(
    'select',
    { class: 'form-select form-select-sm', id: 'promote-stage' },
    ['candidate', 'staging', 'production'].map((s) =>
      h('option', { value: s, selected: s === 'production', text: t(`value.${s}`) }),
    ),
  );
  const tag = h(
    'select',
    { class: 'form-select form-select-sm', id: 'deploy-tag' },
    tags.map((x) => h('option', { value: x, text: x })),
  );
  const canary = h('input', {
    class: 'form-control form-control-sm',
    type: 'number',
    min: '1',
    max: '1000',
    value: '1',
    id: 'deploy-canary',
  });
  return h(
    'div',
    { class: 'border rounded p-2 mb-3', id: 'model-actions' },
    actionForm(box, me, {
      id: 'evaluate-form',
      tool: 'evaluate_model',
      submit: t('models.evaluate'),
      controls: [field(t('datasets.split'), split)],
      argsOf: () => ({ modelVersion: v.ref, split: split.value }),
      reason: () => t('models.evaluateReason', { ref: v.ref }),
      onDone: onChange,
    }),
    actionForm(box, me, {
      id: 'promote-form',
      tool: 'promote_model',
      submit: t('models.promote'),
      controls: [field(t('models.stage'), stage)],
      argsOf: () => ({ modelVersion: v.ref, stage: stage.value }),
      reason: () => t('models.promoteReason', { ref: v.ref, stage: t(`value.${stage.value}`) }),
      onDone: onChange,
    }),
    tags.length
      ? actionForm(box, me, {
          id: 'deploy-form',
          tool: 'start_rollout',
          submit: t('models.deploy'),
          controls: [field(t('models.deployTo'), tag), field(t('models.canary'), canary)],
          argsOf: () => ({
            modelVersion: v.ref,
            target: { tag: tag.value },
            canary: Number(canary.value) || 1,
          }),
          reason: () => t('models.deployReason', { ref: v.ref, tag: tag.value }),
          onDone: (out) => {
            location.hash = `#rollouts/${encodeURIComponent(out.rolloutId)}`;
          },
        })
      : null,
    box,
  );
}
