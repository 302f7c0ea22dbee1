import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Feedback samples, hourly confidence per tag, retrain policies and proposals. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  const real = 'double precision' as const;
  await db.schema
    .createTable('feedback_samples')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('device_id', 'varchar(128)', (c) => c.notNull())
    .addColumn('model_version_id', t.id)
    .addColumn('model_name', 'varchar(100)')
    .addColumn('image_key', 'varchar(191)', (c) => c.notNull().unique())
    .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('reason', 'varchar(32)', (c) => c.notNull())
    .addColumn('predictions', t.json, (c) => c.notNull())
    .addColumn('top_confidence', real)
    .addColumn('captured_at', t.time, (c) => c.notNull())
    .addColumn('received_at', t.time, (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('boxes', t.json)
    .addColumn('reject_reason', t.json)
    .addColumn('reviewed_by', 'varchar(128)')
    .addColumn('reviewed_at', t.time)
    .addColumn('used_in', 'varchar(191)')
    .addColumn('used_at', t.time)
    .execute();
  await db.schema
    .createIndex('feedback_samples_queue')
    .on('feedback_samples')
    .columns(['project_id', 'status', 'received_at'])
    .execute();
  await db.schema
    .createIndex('feedback_samples_model')
    .on('feedback_samples')
    .columns(['project_id', 'model_name', 'status'])
    .execute();
  await db.schema
    .createTable('feedback_confidence')
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('tag', 'varchar(100)', (c) => c.notNull())
    .addColumn('hour_start', t.time, (c) => c.notNull())
    .addColumn('conf_sum', real, (c) => c.notNull())
    .addColumn('conf_count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('feedback_confidence_pk', ['project_id', 'tag', 'hour_start'])
    .execute();
  await db.schema
    .createTable('feedback_policies')
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('model_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('policy', t.json, (c) => c.notNull())
    .addColumn('updated_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('feedback_policies_pk', ['project_id', 'model_name'])
    .execute();
  await db.schema
    .createTable('feedback_proposals')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('model_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('trigger_kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('plan', t.json, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('feedback_proposals_model')
    .on('feedback_proposals')
    .columns(['project_id', 'model_name', 'created_at'])
    .execute();
}
