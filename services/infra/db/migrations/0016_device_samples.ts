import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Recent figures of each device's heartbeats (fps, p95 latency, confidence), for the device page's sparklines. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  const real = 'double precision' as const;
  await db.schema
    .createTable('device_samples')
    .addColumn('device_id', t.id, (c) => c.notNull())
    .addColumn('at', t.time, (c) => c.notNull())
    .addColumn('fps', real, (c) => c.notNull())
    .addColumn('latency_p95_ms', real, (c) => c.notNull())
    .addColumn('mean_top_confidence', real)
    .execute();
  await db.schema
    .createIndex('device_samples_device_at')
    .on('device_samples')
    .columns(['device_id', 'at'])
    .execute();
  await db.schema.createIndex('device_samples_at').on('device_samples').column('at').execute();
}
