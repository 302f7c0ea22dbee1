import { api, clearAlert, h, showError } from './api.js';
import {
  fmtTime,
  guard,
  initAuditFilters,
  loadApprovals,
  loadAudit,
  loadLinks,
  showLinkConfirmation,
} from './app-governance.js';
import { initChat, onDomainEvents, openThread, subscribe } from './chat.js';
import { loadDatasets, showDataset } from './app-datasets.js';
import { showEvaluations } from './app-models.js';
import { reviewPage } from './review.js';
import { settingsPage } from './settings.js';
import { devicePage, jobPage, jobsList, modelPage, rolloutPage, rolloutsList } from './pages.js';
import { applyI18n, setLang, t } from './i18n.js';
import { badge, fmtMetrics, fmtNumber } from './results.js';

const PAGES = [
  'chat',
  'datasets',
  'models',
  'jobs',
  'fleet',
  'rollouts',
  'devices',
  'feedback',
  'approvals',
  'audit',
  'links',
  'settings',
];
// Pages drawn from the route's argument (a job, rollout or device id); they answer domain events themselves.
const DETAIL = { jobs: true, rollouts: true, devices: true };
let pageEvents = null;
let me = null;
const loaded = new Set();
let current = null;
// Which pages a domain event makes stale (by the event type's prefix).
const STALE = {
  'dataset.': ['datasets'],
  'model.': ['models'],
  'training.finished': ['models', 'jobs'],
  'training.queued': ['jobs'],
  'training.status': ['jobs'],
  'feedback.received': ['feedback'],
  'device.': ['fleet'],
  'rollout.': ['fleet', 'models', 'rollouts'],
  'approval.': ['approvals', 'audit'],
};
const refreshTimers = new Map();

const loaders = {
  datasets: (q = '') => loadDatasets(me, q),
  links: () => loadLinks(),
  approvals: () => loadApprovals(me),
  audit: () => loadAudit(),
  async models() {
    const { versions } = await api('/api/models?limit=100');
    // the versions to compare are picked from the list, not typed from memory
    document
      .getElementById('model-refs')
      .replaceChildren(...versions.map((v) => h('option', { value: v.ref || `${v.name}@${v.version}` })));
    document.getElementById('model-rows').replaceChildren(
      ...versions.map((v) =>
        h(
          'tr',
          {},
          h(
            'td',
            {},
            h('a', {
              href: `#models/${encodeURIComponent(v.ref || `${v.name}@${v.version}`)}`,
              text: v.ref || `${v.name}@${v.version}`,
            }),
          ),
          h('td', {}, (v.stages || []).map(badge)),
          h('td', { class: 'small', text: fmtMetrics(v.metrics) }),
          h('td', { class: 'small', text: fmtTime(v.createdAt) }),
          h(
            'td',
            {},
            h('button', {
              class: 'btn btn-sm btn-outline-secondary',
              type: 'button',
              text: t('models.showEvaluations'),
              onclick: () => guard(() => showEvaluations(v.ref || `${v.name}@${v.version}`)),
            }),
          ),
        ),
      ),
    );
  },
  async fleet() {
    const { devices } = await api('/api/devices');
    const groups = new Map();
    for (const d of devices) {
      const tag = (d.tags || []).find((x) => x.startsWith('line-')) || '';
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(d);
    }
    const cols = [
      'fleet.name',
      'fleet.model',
      'fleet.health',
      'fleet.fps',
      'fleet.latency',
      'fleet.confidence',
      'fleet.cpu',
      'fleet.memory',
      'fleet.hardware',
      'fleet.lastSeen',
    ];
    const health = (d) => {
      const online = d.health && d.health.online;
      return [
        h('span', { class: 'me-1', text: online ? t('fleet.online') : t('fleet.offline') }),
        online ? badge(d.health.status || 'ok') : null,
        d.health && d.health.issues.length
          ? h('div', { class: 'small text-body-secondary', text: d.health.issues.join('; ') })
          : null,
      ];
    };
    const row = (d) =>
      h(
        'tr',
        { dataset: { device: d.id } },
        h('td', {}, h('a', { href: `#devices/${encodeURIComponent(d.id)}`, text: d.name })),
        h(
          'td',
          { class: 'model' },
          d.model
            ? h('a', { href: `#models/${encodeURIComponent(d.model)}`, text: d.model })
            : h('span', { class: 'text-body-secondary', text: t('fleet.noModel') }),
        ),
        h('td', {}, health(d)),
        h('td', { class: 'text-end', text: d.fps ? fmtNumber(d.fps, 1) : '–' }),
        h('td', {
          class: 'text-end small',
          text: d.latencyP50Ms ? `${fmtNumber(d.latencyP50Ms, 1)} / ${fmtNumber(d.latencyP95Ms, 1)} ms` : '–',
        }),
        h('td', {
          class: 'text-end',
          text: typeof d.meanTopConfidence === 'number' ? fmtNumber(d.meanTopConfidence, 2) : '–',
        }),
        h('td', {
          class: 'text-end',
          text: typeof d.cpuPercent === 'number' ? `${Math.round(d.cpuPercent)} %` : '–',
        }),
        h('td', {
          class: 'text-end',
          text: typeof d.memoryMb === 'number' ? `${fmtNumber(Math.round(d.memoryMb))} MB` : '–',
        }),
        h('td', { class: 'small', text: [d.hardware, d.provider].filter(Boolean).join(' · ') }),
        h('td', { class: 'small', text: fmtTime(d.lastHeartbeatAt) }),
      );
    const root = document.getElementById('fleet-groups');
    root.replaceChildren(
      ...(devices.length
        ? [...groups.entries()].map(([tag, items]) =>
            h(
              'div',
              { class: 'mb-4' },
              h('h2', { class: 'h6', text: tag ? t('fleet.line', { tag }) : t('fleet.untagged') }),
              h(
                'div',
                { class: 'table-responsive' },
                h(
                  'table',
                  { class: 'table table-sm align-middle' },
                  h(
                    'thead',
                    {},
                    h(
                      'tr',
                      {},
                      cols.map((k) => h('th', { text: t(k) })),
                    ),
                  ),
                  h('tbody', {}, items.map(row)),
                ),
              ),
            ),
          )
        : [h('p', { class: 'text-body-secondary', text: t('common.none') })]),
    );
  },
  async feedback() {
    await reviewPage(me);
  },
  async settings() {
    await settingsPage(document.getElementById('settings-root'), me);
  },
};

/** A model version's page and its evaluations; an approved evaluation or promotion redraws both. */
async function showModel(ref) {
  await modelPage(document.getElementById('model-detail'), ref, me, () => guard(() => showModel(ref)));
  await showEvaluations(ref);
}

function show(page, arg) {
  const name = PAGES.includes(page) ? page : 'chat';
  if (name !== current) clearAlert();
  current = name;
  for (const p of PAGES) document.getElementById(`page-${p}`).classList.toggle('active', p === name);
  for (const a of document.querySelectorAll('#nav .nav-link'))
    a.classList.toggle('active', a.dataset.page === name);
  // the collapsed menu (narrow screens) closes once a page is chosen
  const menu = document.getElementById('nav-menu');
  if (menu.classList.contains('show'))
    window.bootstrap.Collapse.getOrCreateInstance(menu, { toggle: false }).hide();
  if (name === 'chat') {
    if (arg) void guard(() => openThread(arg));
    return;
  }
  loaded.add(name);
  pageEvents = null;
  currentArg = arg;
  if (name === 'devices' && !arg) {
    location.hash = '#fleet';
    return;
  }
  void guard(async () => {
    if (DETAIL[name]) {
      pageEvents = await detail[name](arg);
      return;
    }
    await loaders[name]();
    if (arg && name === 'datasets') await showDataset(me, arg);
    if (arg && name === 'models') await showModel(arg);
    if (!arg && name === 'models') document.getElementById('model-detail').replaceChildren();
  });
}

let currentArg;
// The pages of one job, rollout or device (or the lists when no id is given); each returns its event handler.
const detail = {
  jobs: (id) =>
    id
      ? jobPage(document.getElementById('jobs-root'), id, me, subscribe)
      : jobsList(document.getElementById('jobs-root')),
  rollouts: (id) =>
    id
      ? rolloutPage(document.getElementById('rollouts-root'), id, me, subscribe)
      : rolloutsList(document.getElementById('rollouts-root')),
  devices: (id) => devicePage(document.getElementById('devices-root'), id, me),
};

/** Reloads the open page when an event changes what it shows (at most once a second, heartbeats every 5 s). */
function refreshOn(e) {
  if (pageEvents && pageEvents(e) === 'reload' && !refreshTimers.has('detail')) {
    const [page, arg] = [current, currentArg];
    refreshTimers.set(
      'detail',
      setTimeout(() => {
        refreshTimers.delete('detail');
        // a card waiting for a decision on this page is not thrown away; deciding it redraws the page
        const waiting = document.querySelector(`#page-${page} .approval-card button[data-action="approve"]`);
        if (current === page && currentArg === arg && !waiting)
          void guard(async () => (pageEvents = await detail[page](arg)));
      }, 1000),
    );
  }
  if (DETAIL[current] && currentArg) return;
  for (const [prefix, pages] of Object.entries(STALE)) {
    if (!e.type.startsWith(prefix) || !pages.includes(current) || refreshTimers.has(current)) continue;
    const page = current;
    refreshTimers.set(
      page,
      setTimeout(
        () => {
          refreshTimers.delete(page);
          if (current === page) void guard(() => refreshers[page]());
        },
        e.type === 'device.updated' ? 5000 : 1000,
      ),
    );
  }
}

// What a live refresh reloads: the list, and the open detail where one is open.
const refreshers = {
  datasets: async () => {
    await loaders.datasets(document.getElementById('dataset-q').value.trim());
    const open = document.getElementById('dataset-detail').dataset.ref;
    if (open) await showDataset(me, open.split('@')[0]);
  },
  models: () => loaders.models(),
  feedback: () => loaders.feedback(),
  fleet: () => loaders.fleet(),
  approvals: () => loaders.approvals(),
  audit: () => loaders.audit(),
  jobs: async () => (pageEvents = await detail.jobs(currentArg)),
  rollouts: async () => (pageEvents = await detail.rollouts(currentArg)),
};

async function route() {
  const hash = location.hash.replace(/^#/, '');
  if (hash.startsWith('link/')) {
    show('links');
    await guard(() => showLinkConfirmation(hash.slice(5), me));
    return;
  }
  document.getElementById('link-confirm').replaceChildren();
  const [page, ...rest] = hash.split('/');
  show(page, rest.length ? decodeURIComponent(rest.join('/')) : undefined);
}

async function main() {
  applyI18n(document);
  document.getElementById('lang').addEventListener('change', (e) => {
    setLang(e.target.value);
    document.getElementById('who').textContent = t('nav.who', {
      name: me.user.name,
      role: t(`role.${me.user.role}`),
    });
  });
  try {
    me = await api('/api/me');
  } catch (err) {
    showError(err);
    return;
  }
  document.body.dataset.role = me.user.role;
  document.getElementById('who').textContent = t('nav.who', {
    name: me.user.name,
    role: t(`role.${me.user.role}`),
  });
  document.getElementById('logout').addEventListener('click', () =>
    guard(async () => {
      await api('/api/auth/logout', { method: 'POST' });
      location.href = '/login.html';
    }),
  );
  document.getElementById('dataset-search').addEventListener('submit', (e) => {
    e.preventDefault();
    void guard(() => loaders.datasets(document.getElementById('dataset-q').value.trim()));
  });
  document.getElementById('compare-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void guard(async () => {
      const a = document.getElementById('compare-a').value.trim();
      const b = document.getElementById('compare-b').value.trim();
      const cmp = await api(`/api/models/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
      const num = (x) => (typeof x === 'number' ? x.toFixed(3) : '–');
      const rows = cmp.metrics.map((m) =>
        h(
          'tr',
          {},
          h('td', { text: m.metric }),
          h('td', {
            text: `${num(m.a)} → ${num(m.b)} (${m.delta !== null && m.delta > 0 ? '+' : ''}${num(m.delta)})`,
          }),
        ),
      );
      document
        .getElementById('compare-result')
        .replaceChildren(
          h(
            'table',
            { class: 'table table-sm' },
            h(
              'thead',
              {},
              h('tr', {}, h('th', { text: t('models.metric') }), h('th', { text: t('models.delta') })),
            ),
            h('tbody', {}, rows),
          ),
        );
    });
  });
  document
    .getElementById('approval-status')
    .addEventListener('change', () => void guard(() => loaders.approvals()));
  initAuditFilters();
  document.getElementById('toast-close').addEventListener('click', () => clearAlert());
  initChat(me);
  onDomainEvents(refreshOn);
  window.addEventListener('hashchange', () => void route());
  await route();
}

void main();
