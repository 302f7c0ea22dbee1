import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Training jobs, per-epoch metrics (one row per job, attempt and epoch) and GPU runners. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('training_jobs')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('name', 'varchar(191)', (c) => c.notNull())
    .addColumn('dataset_name', 'varchar(191)', (c) => c.notNull())
    .addColumn('dataset_version', 'integer', (c) => c.notNull())
    .addColumn('config', t.json, (c) => c.notNull())
    .addColumn('backend', 'varchar(32)', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('runner_id', 'varchar(128)')
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('requested_by', t.id, (c) => c.notNull())
    .addColumn('thread_id', 'varchar(191)')
    .addColumn('message', t.json)
    .addColumn('epochs', 'integer', (c) => c.notNull())
    .addColumn('epochs_done', 'integer', (c) => c.notNull())
    .addColumn('last_metrics', t.json)
    .addColumn('log_tail', t.json, (c) => c.notNull())
    .addColumn('log_seq', 'integer', (c) => c.notNull())
    .addColumn('model_version_id', t.id)
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .addColumn('assigned_at', t.time)
    .addColumn('started_at', t.time)
    .addColumn('finished_at', t.time)
    .addColumn('last_seen_at', t.time)
    .execute();
  await db.schema
    .createIndex('training_jobs_project')
    .on('training_jobs')
    .columns(['project_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('training_jobs_status')
    .on('training_jobs')
    .columns(['status', 'created_at'])
    .execute();

  await db.schema
    .createTable('training_metrics')
    .addColumn('job_id', t.id, (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('epoch', 'integer', (c) => c.notNull())
    .addColumn('epochs', 'integer', (c) => c.notNull())
    .addColumn('metrics', t.json, (c) => c.notNull())
    .addColumn('at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('training_metrics_pk', ['job_id', 'attempt', 'epoch'])
    .execute();

  await db.schema
    .createTable('training_runners')
    .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('backends', t.json, (c) => c.notNull())
    .addColumn('device', t.json, (c) => c.notNull())
    .addColumn('version', 'varchar(100)')
    .addColumn('busy_job_id', t.id)
    .addColumn('last_seen_at', t.time, (c) => c.notNull())
    .execute();
}
