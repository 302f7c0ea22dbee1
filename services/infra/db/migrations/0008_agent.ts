import { sql, type Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Agent checkpoints (LangGraph), channel blobs, pending writes, and conversation threads. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  // Ids are case-sensitive and compared byte-wise (uuid6 order), so MySQL gets a binary collation.
  const key = (n: number) =>
    dialect === 'mysql'
      ? sql.raw(`varchar(${n}) character set utf8mb4 collate utf8mb4_bin`)
      : sql.raw(`varchar(${n})`);
  const blob = dialect === 'mysql' ? sql`longblob` : sql`blob`;
  await db.schema
    .createTable('agent_checkpoints')
    .addColumn('thread_id', key(128), (c) => c.notNull())
    .addColumn('checkpoint_ns', key(255), (c) => c.notNull())
    .addColumn('checkpoint_id', key(64), (c) => c.notNull())
    .addColumn('parent_checkpoint_id', key(64))
    .addColumn('checkpoint_type', 'varchar(16)', (c) => c.notNull())
    .addColumn('checkpoint', blob, (c) => c.notNull())
    .addColumn('metadata_type', 'varchar(16)', (c) => c.notNull())
    .addColumn('metadata', blob, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('agent_checkpoints_pk', ['thread_id', 'checkpoint_ns', 'checkpoint_id'])
    .execute();
  await db.schema
    .createTable('agent_checkpoint_blobs')
    .addColumn('thread_id', key(128), (c) => c.notNull())
    .addColumn('checkpoint_ns', key(255), (c) => c.notNull())
    .addColumn('channel', key(255), (c) => c.notNull())
    .addColumn('version', key(64), (c) => c.notNull())
    .addColumn('value_type', 'varchar(16)', (c) => c.notNull())
    .addColumn('value', blob)
    .addPrimaryKeyConstraint('agent_checkpoint_blobs_pk', [
      'thread_id',
      'checkpoint_ns',
      'channel',
      'version',
    ])
    .execute();
  await db.schema
    .createTable('agent_checkpoint_writes')
    .addColumn('thread_id', key(128), (c) => c.notNull())
    .addColumn('checkpoint_ns', key(255), (c) => c.notNull())
    .addColumn('checkpoint_id', key(64), (c) => c.notNull())
    .addColumn('task_id', key(64), (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('task_path', t.json, (c) => c.notNull())
    .addColumn('channel', 'varchar(255)', (c) => c.notNull())
    .addColumn('value_type', 'varchar(16)', (c) => c.notNull())
    .addColumn('value', blob, (c) => c.notNull())
    .addPrimaryKeyConstraint('agent_checkpoint_writes_pk', [
      'thread_id',
      'checkpoint_ns',
      'checkpoint_id',
      'task_id',
      'idx',
    ])
    .execute();
  await db.schema
    .createTable('agent_threads')
    .addColumn('id', key(128), (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('user_id', t.id, (c) => c.notNull())
    .addColumn('title', 'varchar(500)', (c) => c.notNull())
    .addColumn('status', 'varchar(32)', (c) => c.notNull())
    .addColumn('wait_kind', 'varchar(16)')
    .addColumn('wait_id', 'varchar(128)')
    .addColumn('approval_id', t.id)
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('agent_threads_wait')
    .on('agent_threads')
    .columns(['wait_kind', 'wait_id'])
    .execute();
  await db.schema
    .createIndex('agent_threads_project')
    .on('agent_threads')
    .columns(['project_id', 'updated_at'])
    .execute();
}
