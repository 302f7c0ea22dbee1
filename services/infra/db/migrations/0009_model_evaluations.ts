import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Evaluations of model versions on a dataset version's split: append-only history per version. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  const real = 'double precision' as const;
  await db.schema
    .createTable('model_evaluations')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('model_version_id', t.id, (c) => c.notNull())
    .addColumn('model_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('model_version', 'integer', (c) => c.notNull())
    .addColumn('model_sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('dataset_name', 'varchar(191)', (c) => c.notNull())
    .addColumn('dataset_version', 'integer', (c) => c.notNull())
    .addColumn('split', 'varchar(16)', (c) => c.notNull())
    .addColumn('images', 'integer', (c) => c.notNull())
    .addColumn('images_total', 'integer', (c) => c.notNull())
    .addColumn('map50', real, (c) => c.notNull())
    .addColumn('map50_95', real, (c) => c.notNull())
    .addColumn('precision_at_conf', real, (c) => c.notNull())
    .addColumn('recall_at_conf', real, (c) => c.notNull())
    .addColumn('conf', real, (c) => c.notNull())
    .addColumn('per_class', t.json, (c) => c.notNull())
    .addColumn('settings', t.json, (c) => c.notNull())
    .addColumn('timing', t.json, (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('started_at', t.time, (c) => c.notNull())
    .addColumn('finished_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('model_evaluations_version')
    .on('model_evaluations')
    .columns(['project_id', 'model_version_id', 'finished_at'])
    .execute();
}
