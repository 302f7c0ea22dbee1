import {
  validate,
  deltaChannelHistoryTests,
  type CheckpointSaverTestInitializer,
} from '@langchain/langgraph-checkpoint-validation';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { KyselySaver } from './checkpointer.js';
import { useVitestGlobals } from './checkpointer.fixtures.js';

useVitestGlobals();

const dbs = new WeakMap<KyselySaver, SqliteDb>();

const initializer: CheckpointSaverTestInitializer<KyselySaver> = {
  checkpointerName: 'KyselySaver (sqlite)',
  async createCheckpointer() {
    const db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
    const saver = new KyselySaver(db.kysely);
    dbs.set(saver, db);
    return saver;
  },
  async destroyCheckpointer(saver) {
    await dbs.get(saver)?.close();
  },
};

validate(initializer);
deltaChannelHistoryTests(initializer);
