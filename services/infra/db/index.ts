export type { Db, DbDialect, DbExecutor } from './port.js';
export type { Database } from './schema.js';
export { columnTypes } from './migrate.js';
export type { MigrationModule } from './migrate.js';
export { SqliteDb } from './sqlite.js';

/** Builds the configured database: MySQL when `url` is set (loaded lazily), SQLite otherwise. */
export async function createDb(opts: { url?: string; sqliteFile: string }): Promise<import('./port.js').Db> {
  if (opts.url) {
    const { MysqlDb } = await import('./mysql.js');
    return new MysqlDb({ url: opts.url });
  }
  const { SqliteDb } = await import('./sqlite.js');
  return new SqliteDb({ file: opts.sqliteFile });
}
