import { io } from '/socket.io/socket.io.esm.min.js';
import { api, h, showError, UiError } from './api.js';
import { t } from './i18n.js';
import { approvalCard } from './approval-card.js';
import { resultView } from './results.js';
import {
  ensureChart,
  loadJobMetrics,
  onRollout,
  onTrainingMetrics,
  panel,
  resetSidePanels,
  setPhase,
  showJob,
  showRollout,
} from './chat-panels.js';

export { renderRolloutDevices } from './chat-panels.js';

const state = {
  threadId: null,
  plan: null,
  steps: [],
  me: null,
  socket: null,
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
        panel.jobId = e.wait.id;
        document
          .getElementById('training-job')
          .replaceChildren(h('a', { href: `#jobs/${encodeURIComponent(e.wait.id)}`, text: e.wait.id }));
        ensureChart();
        void subscribe('job', e.wait.id);
        if (!e.quiet) say('agent', t('chat.waitJob', { id: e.wait.id }));
      } else {
        panel.rolloutId = e.wait.id;
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
  if (e.type === 'training.metrics' && e.jobId === panel.jobId) onTrainingMetrics(e);
  if (e.type === 'training.status' && e.job && e.job.id === panel.jobId && !panel.chart?.data.labels.length)
    setPhase(`${t('training.preparing')} (${e.message})`, null);
  if (e.type === 'training.finished' && e.job && e.job.id === panel.jobId)
    setPhase(t(`training.finished.${e.status}`), e.status === 'succeeded' ? 100 : null);
  if (
    (e.type === 'rollout.progress' || e.type === 'rollout.finished' || e.type === 'rollout.started') &&
    (e.rolloutId || (e.rollout && e.rollout.id)) === panel.rolloutId
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

/** Empties the conversation and its side panels (approval, training chart, rollout table) for another one. */
function resetPanels() {
  log().replaceChildren();
  document.getElementById('approval-area').replaceChildren();
  state.shown = new Set();
  resetSidePanels();
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
    Object.assign(state, { threadId: null, plan: null, steps: [], streaming: null });
    Object.assign(panel, { jobId: null, rolloutId: null });
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
