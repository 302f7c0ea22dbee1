import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPlatformError } from '../../../core/errors.js';
import type { Cache } from './port.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The contract every Cache adapter honours; each adapter's test calls this with its initializer. */
export function cacheContract(
  name: string,
  init: () => Promise<{ cache: Cache; cleanup?: () => Promise<void> }>,
): void {
  describe(`Cache contract: ${name}`, () => {
    let cache: Cache;
    let cleanup: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ cache, cleanup } = await init());
    });
    afterAll(async () => {
      await cache?.close();
      await cleanup?.();
    });

    it('reports healthy', async () => {
      expect(await cache.health()).toMatchObject({ port: 'cache', ok: true });
    });

    it('gets, sets and deletes', async () => {
      expect(await cache.get('missing')).toBeUndefined();
      await cache.set('a', 'one');
      expect(await cache.get('a')).toBe('one');
      await cache.set('a', 'two');
      expect(await cache.get('a')).toBe('two');
      await cache.delete('a');
      expect(await cache.get('a')).toBeUndefined();
      await cache.delete('never-there');
    });

    it('round-trips JSON values and hands out copies', async () => {
      const value = { n: 3, list: [1, 'x', null], nested: { ok: true, text: '안전모 ⛑️' } };
      await cache.set('json', value);
      const got = await cache.get<typeof value>('json');
      expect(got).toEqual(value);
      got!.n = 99;
      expect(await cache.get('json')).toEqual(value);
      await cache.set('zero', 0);
      expect(await cache.get('zero')).toBe(0);
      await cache.set('null', null);
      expect(await cache.get('null')).toBeNull();
    });

    it('forgets a value after its TTL', async () => {
      await cache.set('ttl', 'short', 80);
      await cache.set('keep', 'long', 10_000);
      expect(await cache.get('ttl')).toBe('short');
      await sleep(150);
      expect(await cache.get('ttl')).toBeUndefined();
      expect(await cache.get('keep')).toBe('long');
    });

    it('overwriting without a TTL removes the old TTL', async () => {
      await cache.set('persist', 1, 80);
      await cache.set('persist', 2);
      await sleep(150);
      expect(await cache.get('persist')).toBe(2);
    });

    it('increments atomically under 200 concurrent calls', async () => {
      const results = await Promise.all(Array.from({ length: 200 }, () => cache.incr('counter')));
      expect(new Set(results).size).toBe(200);
      expect(Math.max(...results)).toBe(200);
      expect(await cache.incr('counter', { by: 5 })).toBe(205);
      expect(await cache.incr('counter', { by: -10 })).toBe(195);
      expect(await cache.get('counter')).toBe(195);
    });

    it('sets the increment TTL when the counter is created, not on later increments', async () => {
      expect(await cache.incr('window', { ttlMs: 150 })).toBe(1);
      await sleep(80);
      expect(await cache.incr('window', { ttlMs: 150 })).toBe(2);
      await sleep(120);
      // The first TTL (150 ms from creation) has passed, so the window starts over.
      expect(await cache.get('window')).toBeUndefined();
      expect(await cache.incr('window', { ttlMs: 150 })).toBe(1);
    });

    it('refuses to increment a non-integer value with invalid_input', async () => {
      await cache.set('text', 'hello');
      const err = await cache.incr('text').catch((e: unknown) => e);
      expect(isPlatformError(err, 'invalid_input')).toBe(true);
      expect(await cache.get('text')).toBe('hello');
    });

    it('rejects a non-positive TTL', async () => {
      const err = await cache.set('bad', 1, 0).catch((e: unknown) => e);
      expect(isPlatformError(err, 'invalid_input')).toBe(true);
    });

    it('gives a lock to one holder at a time', async () => {
      const attempts = await Promise.all(
        Array.from({ length: 20 }, () => cache.acquireLock('exclusive', 5000)),
      );
      const held = attempts.filter((l) => l !== undefined);
      expect(held).toHaveLength(1);
      expect(await cache.acquireLock('exclusive', 5000)).toBeUndefined();
      expect(await cache.acquireLock('other-name', 5000)).toBeDefined();
      await held[0]!.release();
      const again = await cache.acquireLock('exclusive', 5000);
      expect(again).toBeDefined();
      await again!.release();
    });

    it('lets another holder take a lock after it expires', async () => {
      const first = await cache.acquireLock('expiring', 80);
      expect(first).toBeDefined();
      expect(await cache.acquireLock('expiring', 80)).toBeUndefined();
      await sleep(150);
      const second = await cache.acquireLock('expiring', 5000);
      expect(second).toBeDefined();
      expect(await first!.extend(5000)).toBe(false);
      await second!.release();
    });

    it('releases only when the caller still owns the lock', async () => {
      const first = await cache.acquireLock('owned', 80);
      await sleep(150);
      const second = await cache.acquireLock('owned', 5000);
      expect(second).toBeDefined();
      await first!.release();
      expect(await cache.acquireLock('owned', 5000)).toBeUndefined();
      await second!.release();
      const third = await cache.acquireLock('owned', 5000);
      expect(third).toBeDefined();
      await third!.release();
    });

    it('extends a held lock past its first TTL', async () => {
      const lock = await cache.acquireLock('extended', 100);
      expect(await lock!.extend(5000)).toBe(true);
      await sleep(180);
      expect(await cache.acquireLock('extended', 5000)).toBeUndefined();
      await lock!.release();
      expect(await lock!.extend(5000)).toBe(false);
    });
  });
}
