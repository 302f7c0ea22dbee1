import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dbContract } from './db.contract.js';
import { SqliteDb } from './sqlite.js';

dbContract('sqlite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vdb-'));
  return { db: new SqliteDb({ file: path.join(dir, 'test.db') }), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});
