import { io } from '/socket.io/socket.io.esm.min.js';
import { api, h, showError, UiError } from './api.js';
import { t } from './i18n.js';
import { approvalCard } from './approval-card.js';
import { badge, resultView } from './results.js';

const state = {
  threadId: null,
  plan: null,
  steps: [],
  me: null,
  socket: null,
  chart: null,
  jobId: null,
  rolloutId: null,
  streaming: null,
  awaitingThread: false,
  shown: new Set(),
};
const domainListeners = [];
const STARTERS = ['chat.starter.datasets', 'chat.starter.line3', 'chat.starter.jobs', 'chat.starter.train'];
const ROLES = ['viewer', 'operator', 'approver', 'admin'];
const STATE_BADGE = {
  pending: 'secondary',
  awaiting_approval: 'warning',
  approved: 'info',
  rejected: 'danger',
  running: 'primary',
  done: 'success',
  failed: 'danger',
  waiting: 'info',
  skipped: 'light',
};

function log() {
  return document.getElementById('chat-log');
}

function say(who, text) {
  hideStarters();
  if (who === 'agent') state.shown.add(text);
  const el = h(
    'div',
    { class: `msg rounded p-2 mb-2 ${who === 'user' ? 'msg-user' : 'msg-agent border'}` },
    h('div', { class: 'small fw-semibold', text: t(who === 'user' ? 'chat.you' : 'chat.agent') }),
    h('div', { class: 'msg-text', text }),
  );
  log().append(el);
  log().scrollTop = log().scrollHeight;
  return el;
}

/** Starter prompts in an empty conversation: one click sends a typical request. */
function showStarters() {
  if (log().children.length > 0) return;
  log().append(
    h(
      'div',
      { id: 'starters', class: 'text-body-secondary' },
      h('p', { class: 'small mb-2', text: t('chat.starter.heading') }),
      h(
        'div',
        { class: 'd-flex flex-wrap gap-2' },
        STARTERS.map((key) =>
          h('button', {
            class: 'btn btn-sm btn-outline-primary starter',
            type: 'button',
            text: t(key),
            onclick: () => {
              document.getElementById('chat-input').value = t(key);
              document.getElementById('chat-form').requestSubmit();
            },
          }),
        ),
      ),
    ),
  );
}

function hideStarters() {
  const s = document.getElementById('starters');
  if (s) s.remove();
}

/** Shows what a finished step returned (datasets, versions, devices…) in the conversation. */
function showResult(tool, output, index) {
  const view = resultView(tool, output);
  if (!view) return;
  hideStarters();
  view.dataset.step = String(index);
  log().append(view);
  log().scrollTop = log().scrollHeight;
}

function renderPlan() {
  const list = document.getElementById('plan');
  list.replaceChildren();
  const steps = state.plan ? state.plan.steps : [];
  document.getElementById('plan-empty').classList.toggle('d-none', steps.length > 0);
  steps.forEach((step, i) => {
    const st = state.steps[i] || 'pending';
    list.append(
      h(
        'li',
        { class: 'list-group-item plan-step', dataset: { index: String(i), state: st } },
        h('span', {
          class: `state badge text-bg-${STATE_BADGE[st] || 'secondary'} me-2`,
          text: t(`state.${st}`),
        }),
        h('code', { text: step.tool }),
        h('div', { class: 'small text-body-secondary', text: step.reason }),
      ),
    );
  });
}

function showApproval(e) {
  const area = document.getElementById('approval-area');
  area.replaceChildren(
    approvalCard(
      {
        id: e.approvalId,
        tool: e.tool,
        args: e.args,
        risk: e.risk,
        policy: e.policy,
        reason: e.reason,
        status: 'pending',
        requester: null,
      },
      state.me,
      async (decision) => {
        const ack = await state.socket.emitWithAck('chat:decide', {
          threadId: state.threadId,
          approvalId: e.approvalId,
          ...decision,
        });
        if (!ack.ok) throw new UiError(t('error.message', { message: ack.error.message }), ack.error.code, 0);
        area.replaceChildren();
      },
    ),
  );
}

function setPhase(text, pct) {
  const bar = document.getElementById('training-progress');
  document.getElementById('training-phase').textContent = text;
  bar.style.width = `${pct ?? 0}%`;
  bar.textContent = pct === null ? '' : `${pct}%`;
  bar.parentElement.setAttribute('aria-valuenow', String(pct ?? 0));
}

function ensureChart() {
  if (state.chart) return state.chart;
  document.getElementById('training-card').classList.remove('d-none');
  // nothing has run yet: the runner is loading data and building the model
  setPhase(t('training.preparing'), null);
  state.chart = new window.Chart(document.getElementById('training-chart'), {
    type: 'line',
    data: {
      labels: [],
      datasets: [
        { label: t('training.loss'), data: [], yAxisID: 'y' },
        { label: t('training.map'), data: [], yAxisID: 'y1' },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      scales: { y: { position: 'left' }, y1: { position: 'right', min: 0, max: 1 } },
    },
  });
  return state.chart;
}

function lossOf(metrics) {
  const keys = Object.keys(metrics).filter((k) => /loss/i.test(k));
  return keys.length ? keys.reduce((s, k) => s + Number(metrics[k]), 0) : null;
}

function onTrainingMetrics(e) {
  const chart = ensureChart();
  if (e.kind === 'epoch') {
    const label = t('training.epoch', { n: e.epoch });
    if (!chart.data.labels.includes(label)) {
      chart.data.labels.push(label);
      chart.data.datasets[0].data.push(lossOf(e.metrics));
      chart.data.datasets[1].data.push(e.metrics.mAP50 ?? e.metrics.map50 ?? null);
      chart.update();
    }
  }
  const epochs = e.epochs || '?';
  if (e.kind === 'epoch') {
    // an epoch ended: the next one starts at 0 %, the last one ends the run
    const last = typeof e.epochs === 'number' && e.epoch >= e.epochs;
    setPhase(
      t(last ? 'training.lastEpochDone' : 'training.epochDone', { n: e.epoch, epochs }),
      last ? 100 : 0,
    );
  } else if (e.batches) {
    setPhase(
      t('training.epochOf', { n: e.epoch, epochs, batch: e.batch || 0, batches: e.batches }),
      Math.round((100 * (e.batch || 0)) / e.batches),
    );
  }
  document.getElementById('training-card').dataset.epochs = String(chart.data.labels.length);
}

/** Shows each device of the rollout with its state; switched devices turn green. */
export function renderRolloutDevices(devices) {
  const body = document.getElementById('rollout-devices');
  for (const d of devices) {
    let row = body.querySelector(`tr[data-device="${window.CSS.escape(d.deviceId)}"]`);
    if (!row) {
      row = h(
        'tr',
        { class: 'device-row', dataset: { device: d.deviceId } },
        h('td', { text: d.name || d.deviceId }),
        h('td', { class: 'device-state' }),
      );
      body.append(row);
    }
    row.querySelector('.device-state').replaceChildren(badge(d.state));
    const switched = /healthy|switched|completed/.test(d.state);
    row.classList.toggle('switched', switched);
    // Bootstrap 5.3 paints each cell from --bs-table-bg: the row's contextual class sets it
    row.classList.toggle('table-success', switched);
    row.classList.toggle('table-danger', /failed|rolled_back/.test(d.state));
  }
}

function showRolloutSummary(s) {
  document.getElementById('rollout-summary').textContent = t('rollout.summary', {
    state: t(`value.${s.state}`),
    wave: Math.min((s.currentWave ?? 0) + 1, s.waveCount ?? 1),
    waves: s.waveCount ?? 1,
  });
}

async function onRollout(e) {
  document.getElementById('rollout-card').classList.remove('d-none');
  try {
    // the rollout's own status is authoritative; `rollout.finished` carries no wave numbers
    const r = await api(`/api/rollouts/${encodeURIComponent(state.rolloutId)}`);
    showRolloutSummary(r);
    renderRolloutDevices(
      r.devices.map((d) => ({ deviceId: d.deviceId, name: d.name, state: d.deviceState || d.state })),
    );
  } catch {
    showRolloutSummary(e.rollout || e);
    if (e.deviceId)
      renderRolloutDevices([{ deviceId: e.deviceId, name: e.deviceId, state: e.message || e.state }]);
  }
}

/** Joins the socket room of a conversation, job or rollout (its events then arrive). */
export async function subscribe(kind, id) {
  if (!state.socket || !id) return;
  await state.socket.emitWithAck('subscribe', { kind, id });
}

/** Buttons for the answers a clarifying question offers (names from the catalog); picking one sends its request. */
function showChoices(choices) {
  if (!Array.isArray(choices) || choices.length === 0) return;
  const form = document.getElementById('chat-form');
  const input = document.getElementById('chat-input');
  const row = h('div', { class: 'd-flex flex-wrap gap-2 my-2', role: 'group' });
  for (const c of choices) {
    row.append(
      h('button', {
        type: 'button',
        class: 'btn btn-sm btn-outline-primary',
        text: c.label,
        title: c.message,
        onclick: () => {
          row.querySelectorAll('button').forEach((b) => (b.disabled = true));
          input.value = c.message;
          form.requestSubmit();
        },
      }),
    );
  }
  log().append(row);
}

function onAgent(e) {
  if (state.awaitingThread && !state.threadId) state.threadId = e.threadId;
  if (e.threadId !== state.threadId) return;
  switch (e.type) {
    case 'agent.plan':
      state.plan = e.plan;
      state.steps = e.plan.steps.map(() => 'pending');
      renderPlan();
      // a reply or question is the whole answer: the report that follows repeats it
      if (e.plan.clarify) {
        say('agent', t('chat.clarify', { text: e.plan.clarify }));
        state.shown.add(e.plan.clarify);
        showChoices(e.plan.choices);
      } else if (e.plan.reply && !state.streaming) say('agent', e.plan.reply);
      break;
    case 'agent.step':
      state.steps[e.index] = e.state;
      renderPlan();
      if (e.state === 'done' && e.output !== undefined) showResult(e.tool, e.output, e.index);
      if (e.state === 'failed' && e.error)
        say('agent', t('chat.stepFailed', { n: e.index + 1, tool: e.tool, message: e.error.message }));
      break;
    case 'agent.approval':
      showApproval(e);
      break;
    case 'agent.progress':
      if (e.progress && e.progress.data && e.progress.data.epoch !== undefined)
        onTrainingMetrics({ kind: 'epoch', ...e.progress.data, metrics: e.progress.data.metrics || {} });
      break;
    case 'agent.wait':
      if (e.wait.kind === 'job') {
        state.jobId = e.wait.id;
        document
          .getElementById('training-job')
          .replaceChildren(h('a', { href: `#jobs/${encodeURIComponent(e.wait.id)}`, text: e.wait.id }));
        ensureChart();
        void subscribe('job', e.wait.id);
        if (!e.quiet) say('agent', t('chat.waitJob', { id: e.wait.id }));
      } else {
        state.rolloutId = e.wait.id;
        document
          .getElementById('rollout-id')
          .replaceChildren(h('a', { href: `#rollouts/${encodeURIComponent(e.wait.id)}`, text: e.wait.id }));
        document.getElementById('rollout-card').classList.remove('d-none');
        void subscribe('rollout', e.wait.id);
        if (!e.quiet) say('agent', t('chat.waitRollout', { id: e.wait.id }));
        void onRollout({});
      }
      break;
    case 'agent.resumed':
      say('agent', t('chat.resumed', { summary: e.summary }));
      break;
    case 'agent.token':
      if (!state.streaming) state.streaming = say('agent', '');
      state.streaming.querySelector('.msg-text').textContent += e.text;
      break;
    case 'agent.report':
      if (state.streaming) state.streaming.querySelector('.msg-text').textContent = e.text;
      else if (!state.shown.has(e.text)) say('agent', e.text);
      state.streaming = null;
      void loadThreads();
      break;
    case 'agent.error':
      say('agent', e.message);
      break;
  }
}

function onDomainEvent(e) {
  for (const fn of domainListeners) fn(e);
  if (e.type === 'training.metrics' && e.jobId === state.jobId) onTrainingMetrics(e);
  if (e.type === 'training.status' && e.job && e.job.id === state.jobId && !state.chart?.data.labels.length)
    setPhase(`${t('training.preparing')} (${e.message})`, null);
  if (e.type === 'training.finished' && e.job && e.job.id === state.jobId)
    setPhase(t(`training.finished.${e.status}`), e.status === 'succeeded' ? 100 : null);
  if (
    (e.type === 'rollout.progress' || e.type === 'rollout.finished' || e.type === 'rollout.started') &&
    (e.rolloutId || (e.rollout && e.rollout.id)) === state.rolloutId
  )
    void onRollout(e);
}

async function loadThreads() {
  try {
    const { conversations } = await api('/api/conversations?limit=20');
    const list = document.getElementById('threads');
    list.replaceChildren(
      ...conversations.map((c) =>
        h(
          'li',
          {
            class: 'list-group-item list-group-item-action',
            role: 'button',
            onclick: () => void openThread(c.id),
          },
          h('span', { class: 'small', text: c.title }),
        ),
      ),
    );
  } catch (err) {
    showError(err);
  }
}

/** Shows a conversation: its exchanges, result tables, plan, pending approval, chart and rollout. */
export async function openThread(id) {
  const view = await api(`/api/conversations/${encodeURIComponent(id)}`);
  state.threadId = view.id;
  state.plan = view.plan;
  state.steps = view.steps.map((s) => s.state || 'pending');
  resetPanels();
  // the current exchange is `message`/`report`; an older server also lists it last in `history`
  const history = view.history.filter(
    (past, i) =>
      !(i === view.history.length - 1 && past.message === view.message && past.report === view.report),
  );
  for (const past of history) {
    say('user', past.message);
    say('agent', past.report);
  }
  if (view.message) say('user', view.message);
  if (view.plan && view.plan.clarify) say('agent', t('chat.clarify', { text: view.plan.clarify }));
  view.steps.forEach((s, i) => {
    if (s.state === 'done' && s.output !== undefined) showResult(s.tool, s.output, i);
  });
  if (view.report && !(view.plan && view.plan.clarify === view.report)) say('agent', view.report);
  renderPlan();
  if (view.pendingApproval) showApproval({ ...view.pendingApproval, threadId: view.id });
  await subscribe('conversation', view.id);
  // the chart and rollout table of this exchange, waited for now or finished before
  for (const s of view.steps) {
    const wait =
      s.wait ||
      (s.output && s.output.jobId
        ? { kind: 'job', id: s.output.jobId }
        : s.output && s.output.rolloutId
          ? { kind: 'rollout', id: s.output.rolloutId }
          : null);
    if (!wait || (view.waitingFor && view.waitingFor.id === wait.id)) continue;
    if (wait.kind === 'job') await showJob(wait.id);
    else await showRollout(wait.id);
  }
  if (view.waitingFor) {
    onAgent({ type: 'agent.wait', threadId: view.id, wait: view.waitingFor, quiet: true });
    if (view.waitingFor.kind === 'job') await loadJobMetrics(view.waitingFor.id);
  }
}

async function loadJobMetrics(jobId) {
  try {
    const { epochs } = await api(`/api/jobs/${encodeURIComponent(jobId)}/metrics`);
    for (const ep of epochs || [])
      onTrainingMetrics({ kind: 'epoch', epoch: ep.epoch, epochs: ep.epochs, metrics: ep.metrics || {} });
  } catch (err) {
    // a server without training (or a job of another project) has no curve to show
    if (!(err instanceof UiError && (err.code === 'unavailable' || err.code === 'not_found'))) showError(err);
  }
}

async function showJob(jobId) {
  state.jobId = jobId;
  document
    .getElementById('training-job')
    .replaceChildren(h('a', { href: `#jobs/${encodeURIComponent(jobId)}`, text: jobId }));
  ensureChart();
  await loadJobMetrics(jobId);
  try {
    const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status))
      setPhase(t(`training.finished.${job.status}`), job.status === 'succeeded' ? 100 : null);
  } catch {
    // the chart is what matters; the job's own state is a detail
  }
}

async function showRollout(rolloutId) {
  state.rolloutId = rolloutId;
  document
    .getElementById('rollout-id')
    .replaceChildren(h('a', { href: `#rollouts/${encodeURIComponent(rolloutId)}`, text: rolloutId }));
  await onRollout({});
}

/** Empties the side panels (approval, training chart, rollout table) for another conversation. */
function resetPanels() {
  log().replaceChildren();
  document.getElementById('approval-area').replaceChildren();
  if (state.chart) state.chart.destroy();
  state.chart = null;
  state.shown = new Set();
  document.getElementById('training-card').classList.add('d-none');
  document.getElementById('training-job').replaceChildren();
  document.getElementById('rollout-card').classList.add('d-none');
  document.getElementById('rollout-devices').replaceChildren();
  document.getElementById('rollout-summary').textContent = '';
  document.getElementById('rollout-id').replaceChildren();
}

/** Calls `fn` with every domain event the socket receives (pages refresh themselves with it). */
export function onDomainEvents(fn) {
  domainListeners.push(fn);
}

/** Sets up the chat page: socket, form, conversation list. */
export function initChat(me) {
  state.me = me;
  state.socket = io({ transports: ['websocket', 'polling'] });
  state.socket.on('agent', onAgent);
  state.socket.on('event', onDomainEvent);
  state.socket.on('chat:error', (e) =>
    showError(new UiError(t('error.message', { message: e.message }), e.code, 0)),
  );
  state.socket.on('connect_error', (err) =>
    showError(
      new UiError(
        err.data && err.data.code === 'unauthenticated' ? t('error.unauthenticated') : t('error.network'),
        'socket',
        0,
      ),
    ),
  );
  document.getElementById('chat-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('chat-input');
    const message = input.value.trim();
    if (!message) return;
    input.value = '';
    say('user', message);
    state.shown = new Set();
    state.awaitingThread = !state.threadId;
    const ack = await state.socket.emitWithAck('chat:send', {
      message,
      ...(state.threadId ? { threadId: state.threadId } : {}),
    });
    state.awaitingThread = false;
    if (!ack.ok) {
      showError(new UiError(t('error.message', { message: ack.error.message }), ack.error.code, 0));
      return;
    }
    state.threadId = ack.threadId;
  });
  document.getElementById('new-chat').addEventListener('click', () => {
    Object.assign(state, {
      threadId: null,
      plan: null,
      steps: [],
      jobId: null,
      rolloutId: null,
      streaming: null,
    });
    resetPanels();
    renderPlan();
    showStarters();
  });
  renderPlan();
  showStarters();
  void loadThreads();
}

/** Whether `role` reaches `needed`. */
export function roleAtLeast(role, needed) {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
