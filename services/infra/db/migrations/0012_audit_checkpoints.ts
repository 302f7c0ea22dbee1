import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/**
 * Audit key ids (entries and the chain head name the key that signed them), a signed chain head and
 * the table of signed checkpoints that catch a truncated chain.
 */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  // one column per statement: SQLite's ALTER TABLE adds one at a time
  await db.schema.alterTable('audit_log').addColumn('key_id', 'varchar(32)').execute();
  await db.schema.alterTable('audit_heads').addColumn('key_id', 'varchar(32)').execute();
  await db.schema.alterTable('audit_heads').addColumn('mac', 'varchar(64)').execute();
  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('seq', t.time, (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('at', t.time, (c) => c.notNull())
    .addColumn('key_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('mac', 'varchar(64)', (c) => c.notNull())
    .addUniqueConstraint('audit_checkpoints_project_seq', ['project_id', 'seq'])
    .execute();
}
