import { api, showError, UiError } from './api.js';
import { applyI18n, setLang, t } from './i18n.js';

applyI18n(document);
document.getElementById('lang').addEventListener('change', (e) => setLang(e.target.value));

document.getElementById('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = document.getElementById('email').value.trim();
  const password = document.getElementById('password').value;
  if (!email || !password) {
    showError(new UiError(t('login.missing'), 'invalid_input', 400));
    return;
  }
  try {
    await api('/api/auth/login', { method: 'POST', body: { email, password } });
    const next = decodeURIComponent((location.hash.match(/next=([^&]*)/) || [])[1] || '');
    location.href = `/${next.startsWith('#') ? next : '#chat'}`;
  } catch (err) {
    showError(err);
  }
});
