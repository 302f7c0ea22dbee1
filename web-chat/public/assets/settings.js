import { api, h, showError, showInfo } from './api.js';
import { t } from './i18n.js';
import { badge } from './results.js';
import { retrainSection } from './settings-retrain.js';
import { usersSection } from './settings-users.js';

const ROLES = ['viewer', 'operator', 'approver', 'admin'];

function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString(document.documentElement.lang) : '–';
}

/** Settings → API tokens: your tokens (never their secrets), a form to create one (shown once), revoke; then retrain policies. */
export async function settingsPage(root, me) {
  const { tokens } = await api('/api/tokens');
  const secretBox = h('div', { id: 'token-secret' });
  const mine = ROLES.slice(0, ROLES.indexOf(me.user.role) + 1);
  const form = h(
    'form',
    { class: 'row g-2 align-items-end mb-3', id: 'token-form' },
    h(
      'div',
      { class: 'col-md-3' },
      h('label', { class: 'form-label small', for: 'token-name', text: t('settings.tokenName') }),
      h('input', {
        class: 'form-control form-control-sm',
        id: 'token-name',
        required: true,
        maxlength: '200',
        placeholder: t('settings.tokenNameHint'),
      }),
    ),
    h(
      'div',
      { class: 'col-md-2' },
      h('label', { class: 'form-label small', for: 'token-role', text: t('settings.tokenRole') }),
      h(
        'select',
        { class: 'form-select form-select-sm', id: 'token-role' },
        mine.map((r) => h('option', { value: r, selected: r === me.user.role, text: t(`role.${r}`) })),
      ),
    ),
    h(
      'div',
      { class: 'col-md-3' },
      h('span', { class: 'form-label small d-block', text: t('settings.tokenScopes') }),
      ['api', 'mcp'].map((s) =>
        h(
          'div',
          { class: 'form-check form-check-inline' },
          h('input', {
            class: 'form-check-input',
            type: 'checkbox',
            id: `token-scope-${s}`,
            value: s,
            checked: s === 'api',
          }),
          h('label', {
            class: 'form-check-label small',
            for: `token-scope-${s}`,
            text: t(`settings.scope.${s}`),
          }),
        ),
      ),
    ),
    h(
      'div',
      { class: 'col-md-2' },
      h('label', { class: 'form-label small', for: 'token-days', text: t('settings.tokenDays') }),
      h('input', {
        class: 'form-control form-control-sm',
        id: 'token-days',
        type: 'number',
        min: '1',
        max: '3650',
        value: '90',
      }),
    ),
    h(
      'div',
      { class: 'col-md-2' },
      h('button', {
        class: 'btn btn-sm btn-primary',
        type: 'submit',
        id: 'token-create',
        text: t('settings.createToken'),
      }),
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      const scopes = [...form.querySelectorAll('input[type=checkbox]:checked')].map((x) => x.value);
      const days = Number(form.querySelector('#token-days').value);
      const body = {
        name: form.querySelector('#token-name').value.trim(),
        role: form.querySelector('#token-role').value,
        scopes: scopes.length ? scopes : ['api'],
        ...(days > 0 ? { expiresInDays: days } : {}),
      };
      const created = await api('/api/tokens', { method: 'POST', body });
      await settingsPage(root, me);
      // the secret exists only in this response: shown once, with a copy button
      const secret = h('input', {
        class: 'form-control form-control-sm font-monospace',
        id: 'token-value',
        readonly: true,
        value: created.token,
      });
      document.getElementById('token-secret').replaceChildren(
        h(
          'div',
          { class: 'alert alert-warning' },
          h('div', { class: 'small fw-semibold mb-1', text: t('settings.tokenOnce') }),
          h(
            'div',
            { class: 'input-group input-group-sm' },
            secret,
            h('button', {
              class: 'btn btn-outline-secondary',
              type: 'button',
              text: t('settings.copy'),
              onclick: () =>
                void navigator.clipboard.writeText(created.token).then(
                  () => showInfo(t('settings.copied')),
                  () => secret.select(),
                ),
            }),
          ),
        ),
      );
    })().catch(showError);
  });
  root.replaceChildren(
    h('h2', { class: 'h5', text: t('settings.tokens') }),
    h('p', { class: 'small text-body-secondary', text: t('settings.tokensHelp') }),
    me.user.kind === 'user' ? form : h('p', { class: 'small', text: t('settings.tokenAsToken') }),
    secretBox,
    h(
      'div',
      { class: 'table-responsive' },
      h(
        'table',
        { class: 'table table-sm align-middle', id: 'token-rows' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [
              'settings.tokenName',
              'settings.tokenRole',
              'settings.tokenScopes',
              'settings.created',
              'settings.expires',
              'settings.lastUsed',
              'settings.state',
              '',
            ].map((k) => h('th', { text: k ? t(k) : '' })),
          ),
        ),
        h(
          'tbody',
          {},
          tokens.length
            ? tokens.map((tk) =>
                h(
                  'tr',
                  { dataset: { token: tk.id } },
                  h('td', { text: tk.name }),
                  h('td', { text: t(`role.${tk.role}`) }),
                  h('td', { text: tk.scopes.join(', ') }),
                  h('td', { class: 'small', text: fmtTime(tk.createdAt) }),
                  h('td', { class: 'small', text: fmtTime(tk.expiresAt) }),
                  h('td', { class: 'small', text: fmtTime(tk.lastUsedAt) }),
                  h(
                    'td',
                    {},
                    badge(
                      tk.revokedAt
                        ? 'revoked'
                        : tk.expiresAt && tk.expiresAt < Date.now()
                          ? 'expired'
                          : 'active',
                    ),
                  ),
                  h(
                    'td',
                    {},
                    tk.revokedAt
                      ? null
                      : h('button', {
                          class: 'btn btn-sm btn-outline-danger',
                          type: 'button',
                          dataset: { action: 'revoke' },
                          text: t('settings.revoke'),
                          onclick: () =>
                            void (async () => {
                              if (!window.confirm(t('settings.revokeConfirm', { name: tk.name }))) return;
                              await api(`/api/tokens/${encodeURIComponent(tk.id)}`, { method: 'DELETE' });
                              showInfo(t('settings.revoked', { name: tk.name }));
                              await settingsPage(root, me);
                            })().catch(showError),
                        }),
                  ),
                ),
              )
            : h('tr', {}, h('td', { colspan: '8', class: 'text-body-secondary', text: t('common.none') })),
        ),
      ),
    ),
  );
  root.append(await usersSection(me), await retrainSection(me));
}
