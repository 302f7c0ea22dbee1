import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteDb } from '../infra/db/sqlite.js';
import { accountServiceSuite } from './account.service.contract.js';

accountServiceSuite('sqlite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vacct-'));
  return {
    db: new SqliteDb({ file: path.join(dir, 'accounts.db') }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
