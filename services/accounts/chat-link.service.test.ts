import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteDb } from '../infra/db/sqlite.js';
import { chatLinkServiceSuite } from './chat-link.service.contract.js';

chatLinkServiceSuite('sqlite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vchatlink-'));
  return {
    db: new SqliteDb({ file: path.join(dir, 'links.db') }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
