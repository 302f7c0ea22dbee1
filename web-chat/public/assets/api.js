import { t } from './i18n.js';

/** An error a person can act on: its message is already translated. */
export class UiError extends Error {
  constructor(message, code, status, serverMessage = '') {
    super(message);
    this.code = code;
    this.status = status;
    /** The server's own (English) message, for callers that explain a code in their own words. */
    this.serverMessage = serverMessage;
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)via_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

/** Turns an API error body into a translated message (never raw JSON or a stack trace). */
export function explain(status, error) {
  const code = error && typeof error.code === 'string' ? error.code : '';
  const message = error && typeof error.message === 'string' ? error.message : '';
  if (code === 'unauthenticated' || status === 401) return t('error.unauthenticated');
  if (code === 'rate_limited' || status === 429) return t('error.rate_limited');
  if (code === 'forbidden') return t('error.forbidden', { message });
  if (code === 'unavailable') return t('error.unavailable', { message });
  if (code === 'internal' || !message) return t('error.generic');
  // the lead words are in the page's language; the server's details follow as they are
  if (['not_found', 'invalid_input', 'conflict', 'approval_required'].includes(code))
    return t(`error.${code}`, { message });
  return t('error.message', { message });
}

/** Calls the REST API with the session cookie and CSRF header (a Blob body is sent as bytes); throws UiError with a readable message. */
export async function api(path, { method = 'GET', body } = {}) {
  let res;
  // a Blob (an upload chunk) goes as raw bytes, anything else as JSON
  const raw = body instanceof window.Blob;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        ...(body === undefined
          ? {}
          : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }),
        ...(method === 'GET' ? {} : { 'x-csrf-token': csrfToken() }),
      },
      ...(body === undefined ? {} : { body: raw ? body : JSON.stringify(body) }),
    });
  } catch {
    throw new UiError(t('error.network'), 'network', 0);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/api/auth/')) {
      location.href = `/login.html#next=${encodeURIComponent(location.hash)}`;
    }
    const error = data && data.error;
    throw new UiError(
      explain(res.status, error),
      (error && error.code) || 'http',
      res.status,
      (error && typeof error.message === 'string' && error.message) || '',
    );
  }
  return data;
}

/** Shows an actionable error in the page's alert area. */
export function showError(err) {
  const text = document.getElementById('toast') || document.getElementById('login-error');
  if (!text) return;
  const box = document.getElementById('toast-box') || text;
  text.textContent = err instanceof UiError ? err.message : t('error.generic');
  box.classList.remove('d-none', 'alert-success');
  box.classList.add('alert-danger');
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => box.classList.add('d-none'), 8000);
}

/** Hides the page's alert (on leaving a page: an error belongs to the page it happened on). */
export function clearAlert() {
  const box = document.getElementById('toast-box');
  if (box) box.classList.add('d-none');
  clearTimeout(showError.timer);
}

/** Creates an element with attributes and children (text children are set as text, never HTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof window.Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Shows a confirmation in the page's alert area. */
export function showInfo(text) {
  const el = document.getElementById('toast');
  if (!el) return;
  const box = document.getElementById('toast-box') || el;
  el.textContent = text;
  box.classList.remove('d-none', 'alert-danger');
  box.classList.add('alert-success');
}
