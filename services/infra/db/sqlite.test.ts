import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dbContract } from './db.contract.js';
import { SqliteDb } from './sqlite.js';

dbContract('sqlite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vdb-'));
  return {
    db: new SqliteDb({ file: path.join(dir, 'test.db') }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe('SqliteDb statement cache', () => {
  it('prepares each SQL text once and runs it again with new parameters, also after the schema changed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vdb-'));
    const db = new SqliteDb({ file: path.join(dir, 'test.db'), statementCacheSize: 8 });
    const prepare = vi.spyOn(Database.prototype, 'prepare');
    try {
      await db.migrate();
      await sql`create table t (id integer primary key, name text)`.execute(db.kysely);
      prepare.mockClear();
      for (let i = 0; i < 20; i++)
        await sql`insert into t (id, name) values (${i}, ${`n${i}`})`.execute(db.kysely);
      const byId = async (id: number) =>
        (await sql<{ name: string }>`select name from t where id = ${id}`.execute(db.kysely)).rows[0]?.name;
      expect([await byId(3), await byId(17)]).toEqual(['n3', 'n17']);
      expect(prepare).toHaveBeenCalledTimes(2);
      await sql`alter table t add column extra text default 'x'`.execute(db.kysely);
      expect(
        (await sql<{ extra: string }>`select * from t where id = ${5}`.execute(db.kysely)).rows[0],
      ).toEqual({ id: 5, name: 'n5', extra: 'x' });
    } finally {
      prepare.mockRestore();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
