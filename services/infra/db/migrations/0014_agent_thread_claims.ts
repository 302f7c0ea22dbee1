import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** Which serve instance is running a conversation's graph, and until when (a lease it renews), so two instances never run one conversation at once. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema.alterTable('agent_threads').addColumn('run_owner', t.id).execute();
  await db.schema.alterTable('agent_threads').addColumn('run_lease_until', t.time).execute();
}
