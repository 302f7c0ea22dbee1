import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Model versions (numbered per project and name), stages and the history of stage changes. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('model_versions')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('job_id', t.id, (c) => c.unique())
    .addColumn('attempt', 'integer')
    .addColumn('runner_id', 'varchar(128)')
    .addColumn('dataset_name', 'varchar(191)')
    .addColumn('dataset_version', 'integer')
    .addColumn('config', t.json, (c) => c.notNull())
    .addColumn('code_version', 'varchar(100)')
    .addColumn('artifacts', t.json, (c) => c.notNull())
    .addColumn('model_key', 'varchar(512)', (c) => c.notNull())
    .addColumn('model_sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('model_size', t.time, (c) => c.notNull())
    .addColumn('input_size', 'integer', (c) => c.notNull())
    .addColumn('class_names', t.json, (c) => c.notNull())
    .addColumn('layout', 'varchar(32)', (c) => c.notNull())
    .addColumn('metrics', t.json, (c) => c.notNull())
    .addColumn('per_class', t.json, (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('model_versions_name_version', ['project_id', 'name', 'version'])
    .execute();
  await db.schema
    .createTable('model_stages')
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('stage', 'varchar(16)', (c) => c.notNull())
    .addColumn('version_id', t.id, (c) => c.notNull())
    .addColumn('set_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('set_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('model_stages_pk', ['project_id', 'name', 'stage'])
    .execute();
  await db.schema
    .createTable('model_stage_history')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('stage', 'varchar(16)', (c) => c.notNull())
    .addColumn('version_id', t.id, (c) => c.notNull())
    .addColumn('previous_version_id', t.id)
    .addColumn('set_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('set_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('model_stage_history_name')
    .on('model_stage_history')
    .columns(['project_id', 'name', 'id'])
    .execute();
}
