import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/** An evaluation keeps its confusion matrix (JSON); null for evaluations recorded before. */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema.alterTable('model_evaluations').addColumn('confusion', t.json).execute();
}
