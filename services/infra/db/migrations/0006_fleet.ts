import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Devices (with their tags), rollouts and per-device deployments. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  const real = 'double precision' as const;
  await db.schema
    .createTable('devices')
    .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('name', 'varchar(191)', (c) => c.notNull())
    .addColumn('tags', t.json, (c) => c.notNull())
    .addColumn('hardware', 'varchar(255)', (c) => c.notNull())
    .addColumn('runtime', t.json, (c) => c.notNull())
    .addColumn('provider', 'varchar(64)', (c) => c.notNull())
    .addColumn('model_version_id', t.id)
    .addColumn('previous_model_version_id', t.id)
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('fps', real, (c) => c.notNull())
    .addColumn('latency_p50_ms', real, (c) => c.notNull())
    .addColumn('latency_p95_ms', real, (c) => c.notNull())
    .addColumn('mean_top_confidence', real)
    .addColumn('cpu_percent', real, (c) => c.notNull())
    .addColumn('memory_mb', real, (c) => c.notNull())
    .addColumn('temperature_c', real)
    .addColumn('build_progress', real)
    .addColumn('first_seen_at', t.time, (c) => c.notNull())
    .addColumn('last_heartbeat_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('devices_project').on('devices').columns(['project_id', 'name']).execute();
  await db.schema
    .createTable('device_tags')
    .addColumn('device_id', 'varchar(128)', (c) => c.notNull())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('tag', 'varchar(100)', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_tags_pk', ['device_id', 'tag'])
    .execute();
  await db.schema.createIndex('device_tags_tag').on('device_tags').columns(['project_id', 'tag']).execute();
  await db.schema
    .createTable('rollouts')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('model_version_id', t.id, (c) => c.notNull())
    .addColumn('model_ref', 'varchar(191)', (c) => c.notNull())
    .addColumn('model_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('target', t.json, (c) => c.notNull())
    .addColumn('strategy', t.json, (c) => c.notNull())
    .addColumn('gates', t.json, (c) => c.notNull())
    .addColumn('offline_policy', t.json, (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('paused_from', 'varchar(16)')
    .addColumn('current_wave', 'integer', (c) => c.notNull())
    .addColumn('wave_count', 'integer', (c) => c.notNull())
    .addColumn('reason', t.json)
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('thread_id', 'varchar(191)')
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .addColumn('started_at', t.time)
    .addColumn('finished_at', t.time)
    .execute();
  await db.schema.createIndex('rollouts_state').on('rollouts').columns(['state', 'project_id']).execute();
  await db.schema
    .createIndex('rollouts_project')
    .on('rollouts')
    .columns(['project_id', 'created_at'])
    .execute();
  await db.schema
    .createTable('rollout_deployments')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('rollout_id', t.id, (c) => c.notNull())
    .addColumn('project_id', t.id, (c) => c.notNull())
    .addColumn('device_id', 'varchar(128)', (c) => c.notNull())
    .addColumn('device_name', 'varchar(191)', (c) => c.notNull())
    .addColumn('wave', 'integer', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('device_state', 'varchar(32)')
    .addColumn('message', t.json)
    .addColumn('previous_model_version_id', t.id)
    .addColumn('baseline_confidence', real)
    .addColumn('latency_p95_ms', real)
    .addColumn('conf_sum', real, (c) => c.notNull())
    .addColumn('conf_count', 'integer', (c) => c.notNull())
    .addColumn('latency_sum', real, (c) => c.notNull())
    .addColumn('latency_count', 'integer', (c) => c.notNull())
    .addColumn('waiting_since', t.time)
    .addColumn('sent_at', t.time)
    .addColumn('healthy_at', t.time)
    .addColumn('verified_at', t.time)
    .addColumn('finished_at', t.time)
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('rollout_deployments_device', ['rollout_id', 'device_id'])
    .execute();
  await db.schema
    .createIndex('rollout_deployments_device_state')
    .on('rollout_deployments')
    .columns(['device_id', 'state'])
    .execute();
}
