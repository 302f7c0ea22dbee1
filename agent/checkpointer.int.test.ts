import * as vitest from 'vitest';
import {
  validate,
  deltaChannelHistoryTests,
  type CheckpointSaverTestInitializer,
} from '@langchain/langgraph-checkpoint-validation';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../test/services.fixtures.js';
import { MysqlDb } from '../services/infra/db/mysql.js';
import { KyselySaver } from './checkpointer.js';
import { useVitestGlobals } from './checkpointer.fixtures.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

useVitestGlobals();

let temp: { url: string; drop: () => Promise<void> } | undefined;
let db: MysqlDb | undefined;

const initializer: CheckpointSaverTestInitializer<KyselySaver> = {
  checkpointerName: 'KyselySaver (mysql)',
  beforeAllTimeout: 60_000,
  async beforeAll() {
    temp = await createTempMysqlDatabase();
    db = new MysqlDb({ url: temp.url });
    await db.migrate();
  },
  async afterAll() {
    await db?.close();
    await temp?.drop();
  },
  async createCheckpointer() {
    // One database per file, emptied for each checkpointer so suites never see each other's state.
    for (const table of ['agent_checkpoint_writes', 'agent_checkpoint_blobs', 'agent_checkpoints'] as const) {
      await db!.kysely.deleteFrom(table).execute();
    }
    return new KyselySaver(db!.kysely);
  },
};

vitest.describe.skipIf(skip)('KyselySaver on MariaDB', () => {
  validate(initializer);
  deltaChannelHistoryTests(initializer);

  vitest.it('stores a checkpoint larger than 64 KiB (LONGBLOB)', async () => {
    const saver = await initializer.createCheckpointer();
    const big = 'x'.repeat(3_000_000);
    const config = await saver.put(
      { configurable: { thread_id: 'big', checkpoint_ns: '' } },
      {
        v: 4,
        id: '1f0aa000-0000-6000-8000-000000000001',
        ts: new Date().toISOString(),
        channel_values: { big },
        channel_versions: { big: 1 },
        versions_seen: {},
      },
      { source: 'input', step: -1, parents: {} },
      { big: 1 },
    );
    const tuple = await saver.getTuple(config);
    vitest.expect((tuple?.checkpoint.channel_values as { big: string }).big.length).toBe(3_000_000);
  });
});
