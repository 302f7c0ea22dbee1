import type { Kysely, Transaction } from 'kysely';
import type { Health } from '../health.js';
import type { Database } from './schema.js';

/** Which SQL dialect an adapter speaks; migrations use it for the few type differences. */
export type DbDialect = 'sqlite' | 'mysql';

/** The relational database port: Kysely over SQLite (embedded) or MySQL/MariaDB (real). */
export interface Db {
  readonly dialect: DbDialect;
  /** The query builder; every domain repository uses it. */
  readonly kysely: Kysely<Database>;
  /** Runs `fn` in one transaction; it commits when `fn` resolves and rolls back when it throws. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
  /** Applies pending migrations and returns the names applied. */
  migrate(): Promise<string[]>;
  health(): Promise<Health>;
  close(): Promise<void>;
}

/** The query-builder type handed to repositories: the database itself or an open transaction. */
export type DbExecutor = Kysely<Database>;
