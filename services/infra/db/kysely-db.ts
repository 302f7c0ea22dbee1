import { sql, type Kysely, type Transaction } from 'kysely';
import type { Health } from '../health.js';
import { migrateToLatest } from './migrate.js';
import type { Db } from './port.js';
import type { Database as Schema } from './schema.js';

/** What both database adapters do the same way once their Kysely dialect is built. */
export abstract class KyselyDb implements Db {
  abstract readonly dialect: Db['dialect'];
  abstract readonly kysely: Kysely<Schema>;

  transaction<T>(fn: (trx: Transaction<Schema>) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute(fn);
  }

  migrate(): Promise<string[]> {
    return migrateToLatest(this.kysely, this.dialect);
  }

  async health(): Promise<Health> {
    try {
      await sql`select 1`.execute(this.kysely);
      return { port: 'db', adapter: this.dialect, ok: true };
    } catch (err) {
      return { port: 'db', adapter: this.dialect, ok: false, detail: this.describeFailure(err) };
    }
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }

  /** The health line of a failed probe. */
  protected describeFailure(err: unknown): string {
    return (err as Error).message;
  }
}
