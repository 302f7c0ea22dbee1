import { h } from './api.js';
import { currentLang, t, tOr } from './i18n.js';

// Keys shown first, in this order; any other scalar key follows, up to MAX_COLUMNS.
const ORDER = [
  'ref',
  'name',
  'label',
  'model',
  'tool',
  'latestVersion',
  'version',
  'status',
  'state',
  'health',
  'stages',
  'dataset',
  'images',
  'boxes',
  'classes',
  'fps',
  'latencyP50Ms',
  'latencyP95Ms',
  'metrics',
  'mAP50',
  'split',
  'issues',
  'risk',
  'reason',
  'progress',
  'createdAt',
  'updatedAt',
];
const LABEL_KEYS = ['ref', 'model', 'label', 'name'];
const MAX_COLUMNS = 8;
const MAX_ROWS = 50;
const ID_KEYS = new Set([
  'id',
  'modelVersionId',
  'previousModelVersionId',
  'threadId',
  'projectId',
  'userId',
]);
const BADGE = {
  ok: 'success',
  healthy: 'success',
  succeeded: 'success',
  completed: 'success',
  production: 'success',
  executed: 'success',
  approved: 'info',
  running: 'primary',
  canary: 'info',
  staging: 'info',
  candidate: 'secondary',
  queued: 'secondary',
  pending: 'secondary',
  warn: 'warning',
  paused: 'warning',
  critical: 'danger',
  error: 'danger',
  failed: 'danger',
  offline: 'dark',
  rolled_back: 'warning',
  rejected: 'danger',
  cancelled: 'secondary',
  write: 'warning',
  read: 'secondary',
};

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A number as people read it, in the page's language: whole numbers with separators, fractions to 3 places. */
export function fmtNumber(n, digits = 3) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const locale = currentLang() === 'ko' ? 'ko-KR' : 'en-US';
  return Number.isInteger(n)
    ? n.toLocaleString(locale)
    : n.toLocaleString(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Metrics as "mAP50 0.812 · precision 0.790", whole numbers without decimals. */
export function fmtMetrics(metrics, keys) {
  const entries = Object.entries(metrics || {}).filter(
    ([k, v]) => typeof v === 'number' && (!keys || keys.includes(k)),
  );
  return entries.map(([k, v]) => `${k} ${fmtNumber(v)}`).join(' · ');
}

/** A state, stage or health word translated, as a coloured badge. */
export function badge(word) {
  const text = tOr(`value.${word}`, String(word).replace(/_/g, ' '));
  return h('span', {
    class: `badge text-bg-${BADGE[word] || 'light'} me-1`,
    dataset: { value: String(word) },
    text,
  });
}

/** The page an item of a result links to, by what it is. */
function linkOf(field, key, item) {
  const v = item[key];
  if (typeof v !== 'string') return null;
  if (field === 'datasets' && key === 'name') return `#datasets/${encodeURIComponent(v)}`;
  if ((field === 'versions' && (key === 'ref' || key === 'label')) || key === 'model')
    return `#models/${encodeURIComponent(v)}`;
  if (field === 'devices' && key === 'name' && typeof item.id === 'string')
    return `#devices/${encodeURIComponent(item.id)}`;
  if (key === 'jobId') return `#jobs/${encodeURIComponent(v)}`;
  if (key === 'rolloutId') return `#rollouts/${encodeURIComponent(v)}`;
  return null;
}

function cell(key, value, link) {
  if (value === null || value === undefined || value === '')
    return h('td', { class: 'text-body-secondary', dataset: { key }, text: '–' });
  let content;
  if (link) content = h('a', { href: link, text: String(value) });
  else if (['status', 'state', 'health', 'risk'].includes(key) && typeof value === 'string')
    content = badge(value);
  else if (key === 'stages' && Array.isArray(value))
    content = value.length ? value.map(badge) : tOr('value.none', '–');
  else if (typeof value === 'number')
    content =
      key === 'latestVersion' || key === 'version'
        ? `v${value}`
        : /Ms$/.test(key)
          ? `${fmtNumber(value, 1)} ms`
          : fmtNumber(value);
  else if (key === 'metrics' && isObj(value))
    content = fmtMetrics(value, ['mAP50', 'mAP50_95', 'precision', 'recall']);
  else if (Array.isArray(value))
    content = value
      .map((x) => (isObj(x) ? String(x.name ?? x.className ?? JSON.stringify(x)) : String(x)))
      .join(', ');
  else if (/At$/.test(key) && typeof value === 'string' && !Number.isNaN(Date.parse(value)))
    content = new Date(value).toLocaleString(document.documentElement.lang);
  else if (isObj(value))
    content = Object.entries(value)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? fmtNumber(v) : String(v)}`)
      .join(' · ');
  else content = String(value);
  return h('td', { dataset: { key } }, content);
}

function columnsOf(items) {
  const present = new Set(items.flatMap((i) => Object.keys(i)));
  const hasLabel = LABEL_KEYS.some((k) => present.has(k));
  const usable = (k) =>
    !(hasLabel && ID_KEYS.has(k)) && !(k === 'id' && hasLabel) && k !== 'tags' && k !== 'description';
  const ordered = [...ORDER.filter((k) => present.has(k)), ...[...present].filter((k) => !ORDER.includes(k))];
  return ordered
    .filter(usable)
    .filter((k) => items.some((i) => !isObj(i[k]) || k === 'metrics' || k === 'counts'))
    .slice(0, MAX_COLUMNS);
}

/** A table of result items (datasets, versions, devices, jobs, approvals…), names linked to their pages. */
export function itemsTable(field, items) {
  const cols = columnsOf(items);
  return h(
    'div',
    { class: 'table-responsive' },
    h(
      'table',
      { class: 'table table-sm table-hover mb-0 result-table', dataset: { field } },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          cols.map((k) => h('th', { text: tOr(`field.${k}`, k) })),
        ),
      ),
      h(
        'tbody',
        {},
        items.slice(0, MAX_ROWS).map((item) =>
          h(
            'tr',
            {},
            cols.map((k) => cell(k, item[k], linkOf(field, k, item))),
          ),
        ),
      ),
    ),
  );
}

function keyValues(output) {
  const scalars = Object.entries(output)
    .filter(([, v]) => !Array.isArray(v) || v.every((x) => !isObj(x)))
    .filter(([k, v]) => !isObj(v) || k === 'metrics' || k === 'splits' || k === 'counts')
    .filter(([k]) => !ID_KEYS.has(k) || !LABEL_KEYS.some((l) => l in output));
  return h(
    'table',
    { class: 'table table-sm mb-2 result-fields' },
    h(
      'tbody',
      {},
      scalars
        .slice(0, 16)
        .map(([k, v]) =>
          h(
            'tr',
            {},
            h('th', { class: 'fw-normal text-body-secondary', text: tOr(`field.${k}`, k) }),
            cell(k, v, linkOf('', k, output)),
          ),
        ),
    ),
  );
}

/** What a finished step returned, as tables and fields a person reads; null when there is nothing to show. */
export function resultView(tool, output) {
  if (!isObj(output)) return null;
  const lists = Object.entries(output).filter(([, v]) => Array.isArray(v) && v.length > 0 && v.every(isObj));
  const emptyLists = Object.entries(output).filter(([, v]) => Array.isArray(v) && v.length === 0);
  const parts = [];
  const hasScalars = Object.entries(output).some(([k, v]) => !Array.isArray(v) && !ID_KEYS.has(k));
  if (hasScalars) parts.push(keyValues(output));
  for (const [field, items] of lists) {
    if (lists.length > 1 || hasScalars)
      parts.push(h('div', { class: 'small fw-semibold mt-2', text: tOr(`field.${field}`, field) }));
    parts.push(itemsTable(field, items));
    if (items.length > MAX_ROWS)
      parts.push(
        h('div', {
          class: 'small text-body-secondary',
          text: t('result.more', { n: fmtNumber(items.length - MAX_ROWS) }),
        }),
      );
  }
  if (parts.length === 0 && emptyLists.length > 0)
    parts.push(h('div', { class: 'small text-body-secondary', text: t('result.none') }));
  if (parts.length === 0) return null;
  const count = lists.length === 1 && !hasScalars ? ` (${fmtNumber(lists[0][1].length)})` : '';
  return h(
    'div',
    { class: 'card result-card mb-2', dataset: { tool } },
    h('div', { class: 'card-header py-1 small fw-semibold', text: `${tOr(`tool.${tool}`, tool)}${count}` }),
    h('div', { class: 'card-body p-2' }, parts),
  );
}

/** A small table: translated headings (keys), the rows, and "none" when there are none. */
export function table(heads, rows, attrs = {}) {
  return h(
    'div',
    { class: 'table-responsive' },
    h(
      'table',
      { class: 'table table-sm align-middle', ...attrs },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          heads.map((k) => h('th', { text: t(k) })),
        ),
      ),
      h(
        'tbody',
        {},
        rows.length
          ? rows
          : h(
              'tr',
              {},
              h('td', {
                colspan: String(heads.length),
                class: 'text-body-secondary',
                text: t('common.none'),
              }),
            ),
      ),
    ),
  );
}
