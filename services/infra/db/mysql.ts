import { Kysely, MysqlDialect, sql, type Transaction } from 'kysely';
import { createPool } from 'mysql2';
import type { Health } from '../health.js';
import { migrateToLatest } from './migrate.js';
import type { Db } from './port.js';
import type { Database as Schema } from './schema.js';

/** Options of the MySQL/MariaDB adapter. */
export interface MysqlDbOptions {
  /** `mysql://user:pass@host:3306/db` */
  url: string;
  connectionLimit?: number;
}

/** The real database: MySQL or MariaDB through mysql2's pool. */
export class MysqlDb implements Db {
  readonly dialect = 'mysql' as const;
  readonly kysely: Kysely<Schema>;

  constructor({ url, connectionLimit = 10 }: MysqlDbOptions) {
    const pool = createPool({
      uri: url,
      connectionLimit,
      supportBigNumbers: true,
      bigNumberStrings: false,
      charset: 'utf8mb4',
      connectTimeout: 5000,
      enableKeepAlive: true,
    });
    this.kysely = new Kysely<Schema>({ dialect: new MysqlDialect({ pool }) });
  }

  transaction<T>(fn: (trx: Transaction<Schema>) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute(fn);
  }

  migrate(): Promise<string[]> {
    return migrateToLatest(this.kysely, this.dialect);
  }

  async health(): Promise<Health> {
    try {
      await sql`select 1`.execute(this.kysely);
      return { port: 'db', adapter: 'mysql', ok: true };
    } catch (err) {
      return {
        port: 'db',
        adapter: 'mysql',
        ok: false,
        detail: `${(err as Error).message || (err as { code?: string }).code} (DATABASE_URL)`,
      };
    }
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}
