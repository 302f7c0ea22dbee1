import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from './port.js';

/** The contract every Db adapter honours; each adapter's test calls this with its initializer. */
export function dbContract(
  name: string,
  init: () => Promise<{ db: Db; cleanup?: () => Promise<void> }>,
): void {
  describe(`Db contract: ${name}`, () => {
    let db: Db;
    let cleanup: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ db, cleanup } = await init());
      await db.migrate();
    });
    afterAll(async () => {
      await db?.close();
      await cleanup?.();
    });

    it('applies migrations once and reports nothing pending the second time', async () => {
      expect(await db.migrate()).toEqual([]);
    });

    it('reports healthy', async () => {
      expect((await db.health()).ok).toBe(true);
    });

    it('round-trips rows with long JSON text and epoch-millisecond times', async () => {
      const description = JSON.stringify({ text: 'x'.repeat(70_000), emoji: '안전모 ⛑️' });
      const now = Date.now();
      await db.kysely
        .insertInto('projects')
        .values({ id: 'p1', name: 'one', description, created_at: now })
        .execute();
      const row = await db.kysely
        .selectFrom('projects')
        .selectAll()
        .where('id', '=', 'p1')
        .executeTakeFirstOrThrow();
      expect(row.description).toBe(description);
      expect(Number(row.created_at)).toBe(now);
    });

    it('commits a transaction that resolves and rolls back one that throws', async () => {
      await db.transaction(async (trx) => {
        await trx
          .insertInto('projects')
          .values({ id: 'p2', name: 'two', description: '', created_at: 1 })
          .execute();
      });
      await expect(
        db.transaction(async (trx) => {
          await trx
            .insertInto('projects')
            .values({ id: 'p3', name: 'three', description: '', created_at: 1 })
            .execute();
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      const ids = (await db.kysely.selectFrom('projects').select('id').orderBy('id').execute()).map(
        (r) => r.id,
      );
      expect(ids).toContain('p2');
      expect(ids).not.toContain('p3');
    });

    it('hands out increasing outbox sequence numbers', async () => {
      const a = await db.kysely
        .insertInto('search_outbox')
        .values({ kind: 'dataset', doc_id: 'd1', op: 'upsert', doc: '{}', created_at: 1 })
        .executeTakeFirstOrThrow();
      const b = await db.kysely
        .insertInto('search_outbox')
        .values({ kind: 'dataset', doc_id: 'd2', op: 'delete', doc: null, created_at: 2 })
        .executeTakeFirstOrThrow();
      expect(Number(b.insertId)).toBeGreaterThan(Number(a.insertId));
    });

    it('enforces unique constraints', async () => {
      await expect(
        db.kysely
          .insertInto('projects')
          .values({ id: 'p9', name: 'one', description: '', created_at: 1 })
          .execute(),
      ).rejects.toThrow();
    });
  });
}
