import { api, showError, UiError } from './api.js';
import { applyI18n, setLang, t } from './i18n.js';

applyI18n(document);
document.getElementById('lang').addEventListener('change', (e) => setLang(e.target.value));

const FIREBASE_REJECTED = new Set([
  'auth/invalid-credential',
  'auth/invalid-login-credentials',
  'auth/wrong-password',
  'auth/user-not-found',
  'auth/invalid-email',
]);

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement('script');
    el.src = src;
    el.onload = () => resolve();
    el.onerror = () => reject(new UiError(t('error.network'), 'network', 0));
    document.head.append(el);
  });
}

/** Firebase mode: the Web SDK (compat builds served from node_modules under /vendor/firebase) signs in; the server gets the ID token. */
async function firebaseSignIn(cfg) {
  if (!cfg.apiKey) throw new UiError(t('login.firebaseNotConfigured'), 'unavailable', 0);
  if (!window.firebase) {
    await loadScript('/vendor/firebase/firebase-app-compat.js');
    await loadScript('/vendor/firebase/firebase-auth-compat.js');
  }
  const fb = window.firebase;
  const app = fb.apps.length
    ? fb.app()
    : fb.initializeApp({ apiKey: cfg.apiKey, authDomain: cfg.authDomain, projectId: cfg.projectId });
  const auth = app.auth();
  if (cfg.emulatorUrl && !auth.emulatorConfig) auth.useEmulator(cfg.emulatorUrl, { disableWarnings: true });
  // the platform keeps the session (HttpOnly cookie); the page need not remember the Firebase user
  await auth.setPersistence(fb.auth.Auth.Persistence.NONE);
  return async (email, password) => {
    let idToken;
    try {
      const cred = await auth.signInWithEmailAndPassword(email, password);
      idToken = await cred.user.getIdToken();
    } catch (err) {
      const code = (err && err.code) || 'unknown';
      if (FIREBASE_REJECTED.has(code)) throw new UiError(t('login.firebaseRejected'), code, 401);
      if (code === 'auth/user-disabled') throw new UiError(t('login.firebaseDisabled'), code, 403);
      if (code === 'auth/network-request-failed') throw new UiError(t('error.network'), code, 0);
      if (code === 'auth/too-many-requests') throw new UiError(t('error.rate_limited'), code, 429);
      throw new UiError(t('login.firebaseFailed', { code }), code, 0);
    } finally {
      await auth.signOut().catch(() => undefined);
    }
    await api('/api/auth/firebase', { method: 'POST', body: { idToken } });
  };
}

let signIn = (email, password) => api('/api/auth/login', { method: 'POST', body: { email, password } });
const ready = api('/api/auth/config')
  .then(async (cfg) => {
    document.body.dataset.authMode = cfg.mode;
    if (cfg.mode !== 'firebase') return;
    document.getElementById('firebase-note').classList.remove('d-none');
    const firebase = await firebaseSignIn(cfg.firebase);
    signIn = firebase;
  })
  .catch((err) => {
    signIn = () => Promise.reject(err);
    showError(err);
  });

document.getElementById('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = document.getElementById('email').value.trim();
  const password = document.getElementById('password').value;
  if (!email || !password) {
    showError(new UiError(t('login.missing'), 'invalid_input', 400));
    return;
  }
  try {
    await ready;
    await signIn(email, password);
    const next = decodeURIComponent((location.hash.match(/next=([^&]*)/) || [])[1] || '');
    location.href = `/${next.startsWith('#') ? next : '#chat'}`;
  } catch (err) {
    // on this page "unauthenticated" means the email or password was wrong, not that a session ended
    if (err instanceof UiError && err.code === 'unauthenticated')
      showError(
        new UiError(
          /disabled/.test(err.serverMessage) ? t('login.disabled') : t('login.wrong'),
          err.code,
          err.status,
        ),
      );
    else if (err instanceof UiError && (err.code === 'rate_limited' || /locked/.test(err.serverMessage)))
      showError(new UiError(t('login.locked'), err.code, err.status));
    else showError(err);
  }
});
