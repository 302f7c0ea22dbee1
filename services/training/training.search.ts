import type { Kysely } from 'kysely';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { SearchDoc } from '../infra/search/port.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import type { TrainingJob } from './model.js';
import { toJob, TrainingRepository, type JobRow } from './training.repository.js';

/** Every training job as a search document, for a full reindex. */
export async function* trainingSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  for await (const row of new TrainingRepository(db.kysely, db.dialect).all()) yield jobSearchDoc(toJob(row));
}

/** Queues the job's search document (`row` as just re-read) in the transaction that changed it. */
export function indexJob(trx: Kysely<Database>, row: JobRow): Promise<void> {
  return enqueueIndex(trx, { op: 'upsert', doc: jobSearchDoc(toJob(row)) });
}

/** The search document of a job (kind `job`, id = job id). */
export function jobSearchDoc(job: TrainingJob): SearchDoc {
  const fields: Record<string, string | number | boolean> = {
    status: job.status,
    backend: job.config.backend,
    dataset: job.dataset,
    model: job.name,
    attempt: job.attempt,
  };
  if (job.runnerId !== null) fields.runner = job.runnerId;
  return {
    kind: 'job',
    id: job.id,
    projectId: job.projectId,
    title: `train ${job.name} on ${job.dataset}`,
    text: [job.name, job.dataset, job.config.backend, job.config.model, job.status, job.message ?? '']
      .filter(Boolean)
      .join(' '),
    tags: ['training', job.status],
    fields,
    updatedAt: job.updatedAt,
  };
}
