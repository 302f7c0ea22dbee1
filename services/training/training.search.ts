import type { Kysely } from 'kysely';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { Storage } from '../infra/storage/port.js';
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

/** Where a job attempt's log batches are stored (one text file per `train.log` batch). */
export function logPartKey(jobId: string, attempt: number, seq: number): string {
  return `jobs/${jobId}/${attempt}/log/${String(seq).padStart(8, '0')}.txt`;
}

/** The search documents of one `train.log` batch: one per line (kind `training_log`), so a hit is the line itself. */
export function logLineDocs(
  job: { id: string; projectId: string; name: string },
  attempt: number,
  seq: number,
  lines: string[],
  at: number,
): SearchDoc[] {
  return lines.flatMap((line, i) =>
    line.trim() === ''
      ? []
      : [
          {
            kind: 'training_log' as const,
            id: `${job.id}:${attempt}:${seq}:${i}`,
            projectId: job.projectId,
            title: line.slice(0, 500),
            text: line.slice(0, 2000),
            tags: [],
            fields: { jobId: job.id, model: job.name, attempt, seq, line: i },
            updatedAt: at,
          },
        ],
  );
}

/** Every stored training log line as a search document, for a full reindex (the lines live in storage). */
export async function* trainingLogSearchDocs(db: Db, storage: Storage): AsyncIterable<SearchDoc> {
  for await (const row of new TrainingRepository(db.kysely, db.dialect).all()) {
    const job = toJob(row);
    const parts = await storage.list(`jobs/${job.id}/`);
    for (const part of parts.sort((a, b) => a.key.localeCompare(b.key))) {
      const m = /^jobs\/[^/]+\/(\d+)\/log\/(\d+)\.txt$/.exec(part.key);
      if (m === null) continue;
      const lines = (await storage.getBuffer(part.key)).toString('utf8').split('\n');
      yield* logLineDocs(job, Number(m[1]), Number(m[2]), lines, job.updatedAt);
    }
  }
}
