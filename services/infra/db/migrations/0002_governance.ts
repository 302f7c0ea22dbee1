import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Approval requests and the append-only, hash-chained audit log with its per-project chain head. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('approvals')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('tool', 'varchar(100)', (c) => c.notNull())
    .addColumn('args', t.json, (c) => c.notNull())
    .addColumn('args_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('edited_args', t.json)
    .addColumn('edited_args_hash', 'varchar(64)')
    .addColumn('risk', 'varchar(16)', (c) => c.notNull())
    .addColumn('reason', t.json, (c) => c.notNull())
    .addColumn('policy', t.json, (c) => c.notNull())
    .addColumn('requester_id', t.id, (c) => c.notNull())
    .addColumn('requester_name', 'varchar(200)', (c) => c.notNull())
    .addColumn('requester_role', 'varchar(16)', (c) => c.notNull())
    .addColumn('requester_kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('thread_id', 'varchar(191)')
    .addColumn('step', 'integer')
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('decision', 'varchar(16)')
    .addColumn('decided_by', t.id)
    .addColumn('decided_by_name', 'varchar(200)')
    .addColumn('decided_by_role', 'varchar(16)')
    .addColumn('decided_at', t.time)
    .addColumn('decision_reason', t.json)
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('expires_at', t.time, (c) => c.notNull())
    .addColumn('consumed_at', t.time)
    .addColumn('consumed_by', t.id)
    .addColumn('pending_key', 'varchar(64)', (c) => c.unique())
    .execute();
  await db.schema
    .createIndex('approvals_project_status')
    .on('approvals')
    .columns(['project_id', 'status', 'created_at'])
    .execute();
  await db.schema
    .createIndex('approvals_project_thread')
    .on('approvals')
    .columns(['project_id', 'thread_id'])
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('seq', t.time, (c) => c.notNull())
    .addColumn('at', t.time, (c) => c.notNull())
    .addColumn('actor_id', t.id, (c) => c.notNull())
    .addColumn('actor_kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('thread_id', 'varchar(191)')
    .addColumn('tool', 'varchar(100)')
    .addColumn('approval_id', t.id)
    .addColumn('data', t.json, (c) => c.notNull())
    .addColumn('prev_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .addUniqueConstraint('audit_log_project_seq', ['project_id', 'seq'])
    .execute();
  await db.schema
    .createIndex('audit_log_project_hash')
    .on('audit_log')
    .columns(['project_id', 'hash'])
    .execute();
  await db.schema
    .createIndex('audit_log_project_thread')
    .on('audit_log')
    .columns(['project_id', 'thread_id'])
    .execute();
  await db.schema
    .createIndex('audit_log_project_actor')
    .on('audit_log')
    .columns(['project_id', 'actor_id'])
    .execute();
  await db.schema
    .createIndex('audit_log_project_tool')
    .on('audit_log')
    .columns(['project_id', 'tool'])
    .execute();
  await db.schema.createIndex('audit_log_project_at').on('audit_log').columns(['project_id', 'at']).execute();

  await db.schema
    .createTable('audit_heads')
    .addColumn('project_id', t.id, (c) => c.primaryKey())
    .addColumn('seq', t.time, (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .execute();
}
