import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/**
 * Exactly-once execution of approved tool calls: one row per approval that started running (its
 * outcome once known, and a lease the running process renews), and one row per effect a service
 * created under an idempotency key, written in the same transaction as the effect.
 */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('tool_executions')
    .addColumn('approval_id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('tool', 'varchar(100)', (c) => c.notNull())
    .addColumn('thread_id', 'varchar(191)')
    .addColumn('args_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('instance_id', t.id, (c) => c.notNull())
    .addColumn('lease_until', t.time, (c) => c.notNull())
    .addColumn('output', t.json)
    .addColumn('error', t.json)
    .addColumn('started_at', t.time, (c) => c.notNull())
    .addColumn('finished_at', t.time)
    .execute();
  await db.schema
    .createIndex('tool_executions_open')
    .on('tool_executions')
    .columns(['status', 'lease_until'])
    .execute();
  await db.schema
    .createTable('idempotent_effects')
    .addColumn('idempotency_key', t.id, (c) => c.notNull())
    .addColumn('kind', 'varchar(64)', (c) => c.notNull())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('ref', t.json, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotent_effects_pk', ['idempotency_key', 'kind'])
    .execute();
}
