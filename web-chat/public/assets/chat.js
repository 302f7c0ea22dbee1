import { io } from '/socket.io/socket.io.esm.min.js';
import { api, h, showError, UiError } from './api.js';
import { t } from './i18n.js';
import { approvalCard } from './approval-card.js';

const state = { threadId: null, plan: null, steps: [], me: null, socket: null, chart: null, jobId: null, rolloutId: null, streaming: null, awaitingThread: false };
const ROLES = ['viewer', 'operator', 'approver', 'admin'];
const STATE_BADGE = { pending: 'secondary', awaiting_approval: 'warning', approved: 'info', rejected: 'danger', running: 'primary', done: 'success', failed: 'danger', waiting: 'info', skipped: 'light' };

function log() {
  return document.getElementById('chat-log');
}

function say(who, text) {
  const el = h('div', { class: `msg rounded p-2 mb-2 ${who === 'user' ? 'msg-user' : 'msg-agent border'}` }, h('div', { class: 'small fw-semibold', text: t(who === 'user' ? 'chat.you' : 'chat.agent') }), h('div', { class: 'msg-text', text }));
  log().append(el);
  log().scrollTop = log().scrollHeight;
  return el;
}

function renderPlan() {
  const list = document.getElementById('plan');
  list.replaceChildren();
  const steps = state.plan ? state.plan.steps : [];
  document.getElementById('plan-empty').classList.toggle('d-none', steps.length > 0);
  steps.forEach((step, i) => {
    const st = state.steps[i] || 'pending';
    list.append(
      h('li', { class: 'list-group-item plan-step', dataset: { index: String(i), state: st } },
        h('span', { class: `state badge text-bg-${STATE_BADGE[st] || 'secondary'} me-2`, text: t(`state.${st}`) }),
        h('code', { text: step.tool }),
        h('div', { class: 'small text-body-secondary', text: step.reason })),
    );
  });
}

function showApproval(e) {
  const area = document.getElementById('approval-area');
  area.replaceChildren(
    approvalCard(
      { id: e.approvalId, tool: e.tool, args: e.args, risk: e.risk, policy: e.policy, reason: e.reason, status: 'pending', requester: null },
      state.me,
      async (decision) => {
        const ack = await state.socket.emitWithAck('chat:decide', { threadId: state.threadId, approvalId: e.approvalId, ...decision });
        if (!ack.ok) throw new UiError(t('error.message', { message: ack.error.message }), ack.error.code, 0);
        area.replaceChildren();
      },
    ),
  );
}

function ensureChart() {
  if (state.chart) return state.chart;
  document.getElementById('training-card').classList.remove('d-none');
  state.chart = new window.Chart(document.getElementById('training-chart'), {
    type: 'line',
    data: { labels: [], datasets: [{ label: t('training.loss'), data: [], yAxisID: 'y' }, { label: t('training.map'), data: [], yAxisID: 'y1' }] },
    options: { animation: false, responsive: true, scales: { y: { position: 'left' }, y1: { position: 'right', min: 0, max: 1 } } },
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
  const bar = document.getElementById('training-progress');
  const pct = e.batches ? Math.round((100 * (e.batch || 0)) / e.batches) : e.kind === 'epoch' ? 100 : 0;
  bar.style.width = `${pct}%`;
  bar.textContent = `${pct}%`;
  bar.parentElement.setAttribute('aria-valuenow', String(pct));
  document.getElementById('training-card').dataset.epochs = String(chart.data.labels.length);
}

function renderDevices(devices) {
  const body = document.getElementById('rollout-devices');
  for (const d of devices) {
    let row = body.querySelector(`tr[data-device="${window.CSS.escape(d.deviceId)}"]`);
    if (!row) {
      row = h('tr', { class: 'device-row', dataset: { device: d.deviceId } }, h('td', { text: d.name || d.deviceId }), h('td', { class: 'device-state' }));
      body.append(row);
    }
    row.querySelector('.device-state').textContent = d.state;
    row.classList.toggle('switched', /healthy|switched|completed/.test(d.state));
  }
}

function showRolloutSummary(s) {
  document.getElementById('rollout-summary').textContent = t('rollout.summary', { state: s.state, wave: (s.currentWave ?? 0) + 1, waves: s.waveCount ?? 1 });
}

async function onRollout(e) {
  document.getElementById('rollout-card').classList.remove('d-none');
  try {
    // the rollout's own status is authoritative; `rollout.finished` carries no wave numbers
    const r = await api(`/api/rollouts/${encodeURIComponent(state.rolloutId)}`);
    showRolloutSummary(r);
    renderDevices(r.devices.map((d) => ({ deviceId: d.deviceId, name: d.name, state: d.deviceState || d.state })));
  } catch {
    showRolloutSummary(e.rollout || e);
    if (e.deviceId) renderDevices([{ deviceId: e.deviceId, name: e.deviceId, state: e.message || e.state }]);
  }
}

async function subscribe(kind, id) {
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
      if (e.plan.clarify) {
        say('agent', t('chat.clarify', { text: e.plan.clarify }));
        showChoices(e.plan.choices);
      }
      else if (e.plan.reply) say('agent', e.plan.reply);
      break;
    case 'agent.step':
      state.steps[e.index] = e.state;
      renderPlan();
      if (e.state === 'failed' && e.error) say('agent', t('chat.stepFailed', { n: e.index + 1, tool: e.tool, message: e.error.message }));
      break;
    case 'agent.approval':
      showApproval(e);
      break;
    case 'agent.progress':
      if (e.progress && e.progress.data && e.progress.data.epoch !== undefined) onTrainingMetrics({ kind: 'epoch', ...e.progress.data, metrics: e.progress.data.metrics || {} });
      break;
    case 'agent.wait':
      if (e.wait.kind === 'job') {
        state.jobId = e.wait.id;
        document.getElementById('training-job').textContent = e.wait.id;
        ensureChart();
        void subscribe('job', e.wait.id);
        say('agent', t('chat.waitJob', { id: e.wait.id }));
      } else {
        state.rolloutId = e.wait.id;
        document.getElementById('rollout-id').textContent = e.wait.id;
        document.getElementById('rollout-card').classList.remove('d-none');
        void subscribe('rollout', e.wait.id);
        say('agent', t('chat.waitRollout', { id: e.wait.id }));
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
      else say('agent', e.text);
      state.streaming = null;
      void loadThreads();
      break;
    case 'agent.error':
      say('agent', e.message);
      break;
  }
}

function onDomainEvent(e) {
  if (e.type === 'training.metrics' && e.jobId === state.jobId) onTrainingMetrics(e);
  if ((e.type === 'rollout.progress' || e.type === 'rollout.finished' || e.type === 'rollout.started') && (e.rolloutId || (e.rollout && e.rollout.id)) === state.rolloutId) void onRollout(e);
}

async function loadThreads() {
  try {
    const { conversations } = await api('/api/conversations?limit=20');
    const list = document.getElementById('threads');
    list.replaceChildren(...conversations.map((c) => h('li', { class: 'list-group-item list-group-item-action', role: 'button', onclick: () => void openThread(c.id) }, h('span', { class: 'small', text: c.title }))));
  } catch (err) {
    showError(err);
  }
}

async function openThread(id) {
  const view = await api(`/api/conversations/${encodeURIComponent(id)}`);
  state.threadId = view.id;
  state.plan = view.plan;
  state.steps = view.steps.map((s) => s.state || 'pending');
  log().replaceChildren();
  for (const past of view.history) {
    say('user', past.message);
    say('agent', past.report);
  }
  if (view.message) say('user', view.message);
  if (view.report) say('agent', view.report);
  renderPlan();
  document.getElementById('approval-area').replaceChildren();
  if (view.pendingApproval) showApproval({ ...view.pendingApproval, threadId: view.id });
  await subscribe('conversation', view.id);
  if (view.waitingFor) onAgent({ type: 'agent.wait', threadId: view.id, wait: view.waitingFor });
}

/** Sets up the chat page: socket, form, conversation list. */
export function initChat(me) {
  state.me = me;
  state.socket = io({ transports: ['websocket', 'polling'] });
  state.socket.on('agent', onAgent);
  state.socket.on('event', onDomainEvent);
  state.socket.on('chat:error', (e) => showError(new UiError(t('error.message', { message: e.message }), e.code, 0)));
  state.socket.on('connect_error', (err) => showError(new UiError(err.data && err.data.code === 'unauthenticated' ? t('error.unauthenticated') : t('error.network'), 'socket', 0)));
  document.getElementById('chat-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('chat-input');
    const message = input.value.trim();
    if (!message) return;
    input.value = '';
    say('user', message);
    state.awaitingThread = !state.threadId;
    const ack = await state.socket.emitWithAck('chat:send', { message, ...(state.threadId ? { threadId: state.threadId } : {}) });
    state.awaitingThread = false;
    if (!ack.ok) {
      showError(new UiError(t('error.message', { message: ack.error.message }), ack.error.code, 0));
      return;
    }
    state.threadId = ack.threadId;
  });
  document.getElementById('new-chat').addEventListener('click', () => {
    Object.assign(state, { threadId: null, plan: null, steps: [], jobId: null, rolloutId: null, streaming: null });
    log().replaceChildren();
    renderPlan();
    document.getElementById('approval-area').replaceChildren();
  });
  renderPlan();
  void loadThreads();
}

/** Whether `role` reaches `needed`. */
export function roleAtLeast(role, needed) {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
