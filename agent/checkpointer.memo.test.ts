import { emptyCheckpoint, uuid6, type Checkpoint } from '@langchain/langgraph-checkpoint';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { KyselySaver } from './checkpointer.js';

/** Counts the statements sent to the database through the saver's Kysely instance. */
function counted(db: SqliteDb): { saver: KyselySaver; queries: () => number } {
  let n = 0;
  const kysely = db.kysely.withPlugin({
    transformQuery: (args) => {
      n++;
      return args.node;
    },
    transformResult: async (args) => args.result,
  });
  return { saver: new KyselySaver(kysely), queries: () => n };
}

function checkpoint(values: Record<string, unknown>, versions: Record<string, number>): Checkpoint {
  return { ...emptyCheckpoint(), id: uuid6(-1), channel_values: values, channel_versions: versions };
}

describe('KyselySaver reading back what it wrote', () => {
  let db: SqliteDb;
  const config = { configurable: { thread_id: 't1', checkpoint_ns: '' } };
  beforeEach(async () => {
    db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
  });
  afterEach(async () => {
    await db.close();
  });

  it('answers the newest checkpoint it just wrote (values of unchanged channels included, with its writes) with one query', async () => {
    const { saver, queries } = counted(db);
    const first = await saver.put(
      config,
      checkpoint({ a: 1, b: 'x' }, { a: 1, b: 1 }),
      { source: 'loop', step: 0, parents: {} },
      { a: 1, b: 1 },
    );
    const second = await saver.put(
      first,
      checkpoint({ a: 2, b: 'x' }, { a: 2, b: 1 }),
      { source: 'loop', step: 1, parents: {} },
      { a: 2 },
    );
    await saver.putWrites(
      second,
      [
        ['a', 3],
        ['__interrupt__', { value: 'ask' }],
      ],
      'task-1',
    );
    const before = queries();
    const tuple = await saver.getTuple(config);
    expect(queries() - before).toBe(1);
    expect(tuple?.checkpoint.channel_values).toEqual({ a: 2, b: 'x' });
    expect(tuple?.pendingWrites).toEqual([
      ['task-1', '__interrupt__', { value: 'ask' }],
      ['task-1', 'a', 3],
    ]);
    expect(tuple?.parentConfig?.configurable?.checkpoint_id).toBe(first.configurable?.checkpoint_id);
    const fromDb = await new KyselySaver(db.kysely).getTuple(config);
    expect(fromDb?.checkpoint).toEqual(tuple?.checkpoint);
    expect(fromDb?.pendingWrites).toEqual(tuple?.pendingWrites);
  });

  it('is never stale when another instance writes the thread: a newer checkpoint or more writes go to the database', async () => {
    const { saver: mine } = counted(db);
    const other = new KyselySaver(db.kysely);
    const first = await mine.put(
      config,
      checkpoint({ a: 1 }, { a: 1 }),
      { source: 'loop', step: 0, parents: {} },
      { a: 1 },
    );
    await other.putWrites(first, [['a', 9]], 'task-other');
    expect((await mine.getTuple(config))?.pendingWrites).toEqual([['task-other', 'a', 9]]);
    const next = await other.put(
      first,
      checkpoint({ a: 2 }, { a: 2 }),
      { source: 'loop', step: 1, parents: {} },
      { a: 2 },
    );
    const seen = await mine.getTuple(config);
    expect(seen?.config.configurable?.checkpoint_id).toBe(next.configurable?.checkpoint_id);
    expect(seen?.checkpoint.channel_values).toEqual({ a: 2 });
  });
});
