import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase } from 'kysely';
import { LRUCache } from 'lru-cache';
import { KyselyDb } from './kysely-db.js';
import type { Database as Schema } from './schema.js';

/** Options of the embedded database. */
export interface SqliteDbOptions {
  /** File path, or `:memory:`. */
  file: string;
  /** Prepared statements kept for reuse, by SQL text (default 500). */
  statementCacheSize?: number;
}

/**
 * The connection as Kysely sees it, with each distinct SQL text prepared once: Kysely's SQLite
 * driver prepares every query again, and preparing costs more than running most of ours. Kysely runs
 * one query at a time on the connection, so a statement is never in use twice at once.
 */
function withStatementCache(raw: Database.Database, max: number): SqliteDatabase {
  const statements = new LRUCache<string, Database.Statement>({ max });
  return {
    prepare(text: string) {
      let stmt = statements.get(text);
      if (stmt === undefined) {
        stmt = raw.prepare(text);
        statements.set(text, stmt);
      }
      return stmt;
    },
    close() {
      statements.clear();
      raw.close();
    },
  };
}

/** The embedded database: SQLite through better-sqlite3, WAL mode, foreign keys on. */
export class SqliteDb extends KyselyDb {
  readonly dialect = 'sqlite' as const;
  readonly kysely: Kysely<Schema>;
  private readonly raw: Database.Database;

  constructor({ file, statementCacheSize = 500 }: SqliteDbOptions) {
    super();
    if (file !== ':memory:') {
      mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
      // The database holds sessions, token hashes and the audit log: owner-only. SQLite creates the
      // -wal and -shm files with the main file's mode, so creating it 0600 first covers them too.
      closeSync(openSync(file, 'a', 0o600));
      chmodSync(file, 0o600);
    }
    this.raw = new Database(file);
    this.raw.pragma('journal_mode = WAL');
    this.raw.pragma('busy_timeout = 5000');
    this.raw.pragma('synchronous = NORMAL');
    this.raw.pragma('foreign_keys = ON');
    this.kysely = new Kysely<Schema>({
      dialect: new SqliteDialect({ database: withStatementCache(this.raw, statementCacheSize) }),
    });
  }
}
