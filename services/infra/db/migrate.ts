import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { PlatformError } from '../../../core/errors.js';
import type { DbDialect } from './port.js';

/** What each file in `migrations/` exports: `up(db, dialect)`, run once, in file-name order. */
export interface MigrationModule {
  up(db: Kysely<any>, dialect: DbDialect): Promise<void>;
}

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Loads every `NNNN_name.ts` in migrations/ and hands the dialect to each. */
class DialectMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: DbDialect) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(MIGRATIONS_DIR))
      .filter((f) => /^\d{4}_[\w-]+\.(ts|js)$/.test(f) && !f.includes('.test.'))
      .sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const mod = (await import(pathToFileURL(path.join(MIGRATIONS_DIR, file)).href)) as MigrationModule;
      migrations[file.replace(/\.(ts|js)$/, '')] = { up: (db) => mod.up(db, this.dialect) };
    }
    return migrations;
  }
}

/** Applies pending migrations; throws `unavailable` naming the failed migration. */
export async function migrateToLatest(db: Kysely<any>, dialect: DbDialect): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new DialectMigrationProvider(dialect),
    migrationTableName: 'schema_migrations',
    migrationLockTableName: 'schema_migrations_lock',
    // domains add migrations independently; a new file sorting before an applied one must still run
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined || failed !== undefined) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new PlatformError(
      'unavailable',
      `database migration ${failed?.migrationName ?? ''} failed: ${reason}`,
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Column types that differ between SQLite and MySQL. */
export function columnTypes(dialect: DbDialect) {
  return {
    /** Long JSON or text. */
    json: dialect === 'mysql' ? sql`longtext` : ('text' as const),
    /** Searchable, indexable short text. */
    id: 'varchar(64)' as const,
    /** Epoch milliseconds. */
    time: 'bigint' as const,
  };
}
