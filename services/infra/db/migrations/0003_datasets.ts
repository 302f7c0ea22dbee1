import type { Kysely } from 'kysely';
import { columnTypes } from '../migrate.js';
import type { DbDialect } from '../port.js';

/** Datasets, immutable dataset versions and the images of each version. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('datasets')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('name', 'varchar(64)', (c) => c.notNull())
    .addColumn('description', t.json, (c) => c.notNull())
    .addColumn('tags', t.json, (c) => c.notNull())
    .addColumn('latest_version', 'integer', (c) => c.notNull())
    .addColumn('created_by', t.id, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('datasets_project_name_uq', ['project_id', 'name'])
    .execute();
  await db.schema
    .createTable('dataset_versions')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('dataset_id', t.id, (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('class_names', t.json, (c) => c.notNull())
    .addColumn('stats', t.json, (c) => c.notNull())
    .addColumn('report', t.json, (c) => c.notNull())
    .addColumn('split_ratios', t.json, (c) => c.notNull())
    .addColumn('lineage', t.json, (c) => c.notNull())
    .addColumn('note', t.json)
    .addColumn('image_count', 'integer', (c) => c.notNull())
    .addColumn('box_count', 'integer', (c) => c.notNull())
    .addColumn('created_by', t.id, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('dataset_versions_dataset_version_uq', ['dataset_id', 'version'])
    .execute();
  await db.schema
    .createTable('dataset_images')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('version_id', t.id, (c) => c.notNull())
    .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('image_key', 'varchar(255)', (c) => c.notNull())
    .addColumn('image_bytes', t.time, (c) => c.notNull())
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('split', 'varchar(8)', (c) => c.notNull())
    .addColumn('boxes', t.json, (c) => c.notNull())
    .addColumn('label_key', 'varchar(255)', (c) => c.notNull())
    .addColumn('label_sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('label_bytes', 'integer', (c) => c.notNull())
    .addColumn('thumbnail_key', 'varchar(255)')
    .addColumn('source_path', t.json, (c) => c.notNull())
    .addUniqueConstraint('dataset_images_version_sha_uq', ['version_id', 'sha256'])
    .execute();
  await db.schema
    .createIndex('dataset_images_version_split_idx')
    .on('dataset_images')
    .columns(['version_id', 'split', 'sha256'])
    .execute();
}
