import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** An edit under four-eyes rules supersedes the request with a new one whose requester is the editor. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema.alterTable('approvals').addColumn('superseded_by', t.id).execute();
}
