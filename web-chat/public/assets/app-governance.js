import { api, h, showError, showInfo } from './api.js';
import { approvalCard } from './approval-card.js';
import { t } from './i18n.js';
import { fmtNumber } from './results.js';

/** Audit entries a page, and where the shown page starts (0 = newest). */
const AUDIT_PAGE = 100;
let auditOffset = 0;
// The audit log's filter fields: input id, query parameter, column width, placeholder key.
const AUDIT_FILTERS = [
  ['audit-thread', 'threadId', 'col-md-3', 'audit.thread'],
  ['audit-tool', 'tool', 'col-md-2', 'audit.tool'],
  ['audit-action', 'action', 'col-md-2', 'audit.action'],
  ['audit-user', 'userId', 'col-md-2', 'audit.user'],
];

/** A time as people read it in the page's language. */
export function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString(document.documentElement.lang) : '';
}

/** Runs `fn`, showing any error in the page's banner. */
export async function guard(fn) {
  try {
    await fn();
  } catch (err) {
    showError(err);
  }
}

/** Shows who asks to link (chat user, workspace) and links only when the person presses Confirm. */
export async function showLinkConfirmation(code, me) {
  const box = document.getElementById('link-confirm');
  const pending = await api(`/api/chat-links/pending/${encodeURIComponent(code)}`);
  const workspace = pending.teamName || t('links.noWorkspace', { id: pending.teamId });
  const done = (message) => {
    box.replaceChildren();
    showInfo(message);
    location.hash = '#links';
  };
  box.replaceChildren(
    h(
      'div',
      { class: 'card border-warning mb-4', id: 'link-confirm-card' },
      h('div', { class: 'card-header', text: t('links.confirmHeading') }),
      h(
        'div',
        { class: 'card-body' },
        h('p', {
          class: 'fw-semibold',
          id: 'link-confirm-who',
          text: t('links.confirmWho', {
            platform: pending.platform,
            user: pending.chatUserName || pending.chatUserId,
            workspace,
            me: `${me.user.name} <${me.user.email}>`,
          }),
        }),
        h('p', { class: 'text-danger small', text: t('links.confirmWarning') }),
        h('p', {
          class: 'small text-body-secondary',
          text: t('links.confirmExpires', { time: fmtTime(pending.expiresAt) }),
        }),
        h(
          'div',
          { class: 'd-flex gap-2' },
          h('button', {
            class: 'btn btn-warning',
            type: 'button',
            id: 'link-confirm-button',
            text: t('links.confirm'),
            onclick: () =>
              guard(async () => {
                const linked = await api('/api/chat-links', {
                  method: 'POST',
                  body: { code, confirm: true },
                });
                done(t('chat.linked', { name: linked.chatUserName || linked.chatUserId }));
              }),
          }),
          h('button', {
            class: 'btn btn-outline-secondary',
            type: 'button',
            id: 'link-cancel-button',
            text: t('links.cancel'),
            onclick: () => done(t('links.cancelled')),
          }),
        ),
      ),
    ),
  );
}

/** The chat accounts linked to the signed-in person, each with Unlink. */
export async function loadLinks() {
  const { links } = await api('/api/chat-links');
  document.getElementById('link-rows').replaceChildren(
    ...(links.length
      ? links.map((l) =>
          h(
            'tr',
            { dataset: { link: l.id } },
            h('td', { text: l.platform }),
            h('td', { text: l.teamName || l.teamId }),
            h('td', { text: l.chatUserName || l.chatUserId }),
            h('td', { class: 'small', text: fmtTime(l.createdAt) }),
            h(
              'td',
              {},
              h('button', {
                class: 'btn btn-sm btn-outline-danger',
                type: 'button',
                text: t('links.unlink'),
                onclick: () =>
                  guard(async () => {
                    await api(`/api/chat-links/${encodeURIComponent(l.id)}`, { method: 'DELETE' });
                    showInfo(t('links.unlinked', { name: l.chatUserName || l.chatUserId }));
                    await loadLinks();
                  }),
              }),
            ),
          ),
        )
      : [h('tr', {}, h('td', { colspan: '5', class: 'text-body-secondary', text: t('common.none') }))]),
  );
}

/** The approval inbox: each request's card; an approved page request can be run here. */
export async function loadApprovals(me) {
  const status = document.getElementById('approval-status').value;
  const { approvals } = await api(`/api/approvals?status=${status}&limit=50`);
  const list = document.getElementById('approval-list');
  const card = (a) => {
    const el = approvalCard({ ...a, args: a.approvedArgs }, me, async (decision) => {
      await api(`/api/approvals/${encodeURIComponent(a.id)}/decide`, { method: 'POST', body: decision });
      await loadApprovals(me);
    });
    // a request made from a page has no conversation to resume it: once approved, anyone who may run it runs it here
    if (a.status === 'approved' && !a.threadId && me.user.role !== 'viewer') {
      el.querySelector('.card-body').append(
        h('button', {
          class: 'btn btn-sm btn-primary mt-2',
          type: 'button',
          dataset: { action: 'run' },
          text: t('approvals.run'),
          onclick: () =>
            guard(async () => {
              await api(`/api/tools/${encodeURIComponent(a.tool)}`, {
                method: 'POST',
                body: { args: a.approvedArgs, approvalId: a.id },
              });
              showInfo(t('actions.done', { what: t(`actions.${a.tool}`) }));
              await loadApprovals(me);
            }),
        }),
      );
    }
    return el;
  };
  list.replaceChildren(
    ...(approvals.length
      ? approvals.map(card)
      : [h('p', { class: 'text-body-secondary', text: t('common.none') })]),
  );
}

/** The audit log, newest first, a page at a time, with its verification badge. */
export async function loadAudit() {
  const q = new URLSearchParams({
    limit: String(AUDIT_PAGE + 1),
    offset: String(auditOffset),
    order: 'desc',
  });
  for (const [id, key] of AUDIT_FILTERS) {
    const v = document.getElementById(id).value.trim();
    if (v) q.set(key, v);
  }
  const [{ entries }, verify] = await Promise.all([api(`/api/audit?${q}`), api('/api/audit/verify')]);
  const badge = document.getElementById('audit-badge');
  badge.removeAttribute('data-i18n');
  badge.className = `badge ${verify.ok ? 'text-bg-success' : 'text-bg-danger'}`;
  badge.dataset.ok = String(verify.ok);
  badge.textContent = verify.ok
    ? t('audit.verified', { n: verify.checked })
    : t('audit.broken', { n: verify.problems.length });
  renderAuditPager(entries.length > AUDIT_PAGE);
  document.getElementById('audit-rows').replaceChildren(
    ...entries.slice(0, AUDIT_PAGE).map((e) =>
      h(
        'tr',
        { dataset: { action: e.action } },
        h('td', { text: String(e.seq) }),
        h('td', { class: 'small', text: fmtTime(e.at) }),
        h('td', {
          title: e.actor.id,
          text: e.actorName || (e.actor.kind === 'system' ? t('audit.system') : e.actor.id),
        }),
        h('td', { text: e.action }),
        h('td', { text: e.tool || '' }),
        h(
          'td',
          { class: 'small' },
          e.threadId
            ? h('a', {
                href: `#chat/${encodeURIComponent(e.threadId)}`,
                text: t('audit.openConversation'),
              })
            : '',
        ),
      ),
    ),
  );
}

/** Newer / Older buttons under the audit log (newest entries first, a page at a time). */
function renderAuditPager(more) {
  const go = (offset) => () => {
    auditOffset = Math.max(0, offset);
    void guard(() => loadAudit());
  };
  document.getElementById('audit-pager').replaceChildren(
    h('button', {
      class: 'btn btn-sm btn-outline-secondary',
      type: 'button',
      id: 'audit-newer',
      disabled: auditOffset === 0,
      text: t('audit.newer'),
      onclick: go(auditOffset - AUDIT_PAGE),
    }),
    h('span', {
      class: 'small text-body-secondary align-self-center',
      text: t('audit.range', { from: fmtNumber(auditOffset + 1), to: fmtNumber(auditOffset + AUDIT_PAGE) }),
    }),
    h('button', {
      class: 'btn btn-sm btn-outline-secondary',
      type: 'button',
      id: 'audit-older',
      disabled: !more,
      text: t('audit.older'),
      onclick: go(auditOffset + AUDIT_PAGE),
    }),
  );
}

/** The audit log's filter fields, and a search that starts again from the newest entries. */
export function initAuditFilters() {
  document.getElementById('audit-filters').prepend(
    ...AUDIT_FILTERS.map(([id, , width, placeholder]) =>
      h(
        'div',
        { class: width },
        h('input', {
          id,
          class: 'form-control',
          placeholder: t(placeholder),
          'data-i18n-placeholder': placeholder,
        }),
      ),
    ),
  );
  document.getElementById('audit-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    auditOffset = 0;
    void guard(() => loadAudit());
  });
}
