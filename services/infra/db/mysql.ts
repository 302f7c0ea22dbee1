import { Kysely, MysqlDialect } from 'kysely';
import { createPool } from 'mysql2';
import { KyselyDb } from './kysely-db.js';
import type { Database as Schema } from './schema.js';

/** Options of the MySQL/MariaDB adapter. */
export interface MysqlDbOptions {
  /** `mysql://user:pass@host:3306/db` */
  url: string;
  connectionLimit?: number;
}

/** The real database: MySQL or MariaDB through mysql2's pool. */
export class MysqlDb extends KyselyDb {
  readonly dialect = 'mysql' as const;
  readonly kysely: Kysely<Schema>;

  constructor({ url, connectionLimit = 10 }: MysqlDbOptions) {
    super();
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

  protected override describeFailure(err: unknown): string {
    return `${(err as Error).message || (err as { code?: string }).code} (DATABASE_URL)`;
  }
}
