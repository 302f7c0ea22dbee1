import { api, h, showError } from './api.js';
import { actionButton, requestAndRun } from './actions.js';
import { t } from './i18n.js';
import {
  artifactsTable,
  datasetLink,
  facts,
  FINAL_JOB,
  fmtTime,
  jobLink,
  lineChart,
  modelLink,
} from './page-kit.js';
import { badge, fmtNumber, table } from './results.js';

/** Training jobs, newest first, each a link to its page. */
export async function jobsList(root) {
  const { jobs } = await api('/api/jobs?limit=100');
  root.replaceChildren(
    h('h2', { class: 'h5', text: t('jobs.heading') }),
    table(
      [
        'jobs.id',
        'jobs.status',
        'jobs.model',
        'jobs.dataset',
        'jobs.progress',
        'jobs.mAP50',
        'jobs.runner',
        'jobs.created',
      ],
      jobs.map((j) =>
        h(
          'tr',
          { dataset: { job: j.id } },
          h('td', {}, jobLink(j.id)),
          h('td', {}, badge(j.status)),
          h('td', { text: j.name }),
          h('td', {}, datasetLink(j.dataset)),
          h('td', { text: t('jobs.epochs', { done: j.epochsDone, total: j.epochs }) }),
          h('td', {
            text:
              j.lastMetrics && typeof j.lastMetrics.mAP50 === 'number' ? fmtNumber(j.lastMetrics.mAP50) : '–',
          }),
          h('td', { class: 'small', text: j.runnerId || '–' }),
          h('td', { class: 'small', text: fmtTime(j.createdAt) }),
        ),
      ),
    ),
  );
}

/** One training job: status, curves, live log tail, the model and files it produced, cancel through an approval. */
export async function jobPage(root, id, me, subscribe) {
  const [job, { epochs }, { lines }] = await Promise.all([
    api(`/api/jobs/${encodeURIComponent(id)}`),
    api(`/api/jobs/${encodeURIComponent(id)}/metrics`),
    api(`/api/jobs/${encodeURIComponent(id)}/logs?tail=200`),
  ]);
  const model = job.modelVersionId
    ? await api(`/api/models/${encodeURIComponent(job.modelVersionId)}`).catch(() => null)
    : null;
  const actions = h('div', { class: 'mb-3 job-actions' });
  const log = h('pre', { class: 'job-log bg-body-tertiary p-2 rounded small', text: lines.join('\n') });
  const loss = (m) =>
    Object.entries(m)
      .filter(([k]) => /loss/i.test(k))
      .reduce((s, [, v]) => s + Number(v), 0);
  root.replaceChildren(
    h('h2', { class: 'h5' }, `${t('jobs.job')} ${job.id} `, badge(job.status)),
    facts([
      ['jobs.model', model ? modelLink(model.ref) : job.name],
      ['jobs.dataset', datasetLink(job.dataset)],
      ['jobs.progress', t('jobs.epochs', { done: job.epochsDone, total: job.epochs })],
      ['jobs.attempt', `${job.attempt} / ${job.maxAttempts}`],
      ['jobs.runner', job.runnerId || '–'],
      [
        'jobs.config',
        Object.entries(job.config || {})
          .map(([k, v]) => `${k} ${v}`)
          .join(' · '),
      ],
      ['jobs.message', job.message || '–'],
      ['jobs.created', fmtTime(job.createdAt)],
      ['jobs.finished', fmtTime(job.finishedAt)],
    ]),
    actions,
    h('h3', { class: 'h6', text: t('jobs.curves') }),
    epochs.length
      ? lineChart(
          'job-chart',
          epochs.map((e) => String(e.epoch)),
          [
            { label: t('training.loss'), data: epochs.map((e) => loss(e.metrics)) },
            { label: 'mAP50', data: epochs.map((e) => e.metrics.mAP50 ?? null), axis: 'y1' },
          ],
        )
      : h('p', { class: 'small text-body-secondary', text: t('jobs.noEpochs') }),
    h('h3', { class: 'h6 mt-3', text: t('jobs.artifacts') }),
    artifactsTable(model),
    h('h3', { class: 'h6 mt-3', text: t('jobs.log') }),
    log,
  );
  if (!FINAL_JOB.includes(job.status) && me.user.role !== 'viewer') {
    actions.replaceChildren(
      actionButton(
        t('jobs.cancel'),
        'btn-outline-danger',
        () =>
          void requestAndRun(
            actions,
            me,
            'cancel_training',
            { jobId: job.id, reason: t('jobs.cancelReason') },
            t('jobs.cancelReason'),
            () => jobPage(root, id, me, subscribe),
          ).catch(showError),
        'cancel',
      ),
    );
  }
  await subscribe('job', id);
  return (e) => {
    if (e.type === 'training.log' && e.jobId === id) {
      log.textContent += `${log.textContent ? '\n' : ''}${e.lines.join('\n')}`;
      log.scrollTop = log.scrollHeight;
    }
    if (
      (e.type === 'training.metrics' && e.kind === 'epoch' && e.jobId === id) ||
      ((e.type === 'training.finished' || e.type === 'training.status') && e.job && e.job.id === id)
    )
      return 'reload';
    return null;
  };
}
