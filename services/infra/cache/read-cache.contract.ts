import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Cache } from './port.js';
import { ReadCache } from './read-cache.js';

/** The read cache's behaviour on one cache adapter (memory, Redis). */
export function readCacheContract(
  name: string,
  init: () => Promise<{ cache: Cache; cleanup: () => Promise<void> }>,
): void {
  describe(`ReadCache on ${name}`, () => {
    let cache: Cache;
    let cleanup: () => Promise<void>;
    let clock: number;
    beforeEach(async () => {
      ({ cache, cleanup } = await init());
      clock = 1_000_000;
    });
    afterEach(async () => {
      await cache.close();
      await cleanup();
    });
    const counter = () => {
      let n = 0;
      return async () => ({ n: ++n });
    };

    it('loads once, then serves the stored result until its scope is invalidated', async () => {
      const reads = new ReadCache({ cache, now: () => clock });
      const load = counter();
      expect(await reads.read('a', 'k', load)).toEqual({ n: 1 });
      expect(await reads.read('a', 'k', load)).toEqual({ n: 1 });
      expect(await reads.read('a', 'other', load)).toEqual({ n: 2 });
      await reads.invalidate('b');
      expect(await reads.read('a', 'k', load)).toEqual({ n: 1 });
      await reads.invalidate('a');
      expect(await reads.read('a', 'k', load)).toEqual({ n: 3 });
      expect(reads.stats()).toEqual({ hits: 2, misses: 3 });
    });

    it('does not store a result loaded while its scope was invalidated', async () => {
      const reads = new ReadCache({ cache, now: () => clock });
      let n = 0;
      const first = await reads.read('a', 'k', async () => {
        n++;
        await reads.invalidate('a');
        return n;
      });
      expect(first).toBe(1);
      expect(await reads.read('a', 'k', async () => ++n)).toBe(2);
    });

    it('reloads a result once the time its loader gave has passed', async () => {
      const reads = new ReadCache({ cache, now: () => clock });
      const load = counter();
      const expiring = async () => ({ value: await load(), validUntil: clock + 1000 });
      expect(await reads.readExpiring('a', 'k', expiring)).toEqual({ n: 1 });
      clock += 999;
      expect(await reads.readExpiring('a', 'k', expiring)).toEqual({ n: 1 });
      clock += 1;
      expect(await reads.readExpiring('a', 'k', expiring)).toEqual({ n: 2 });
    });

    it('an invalidation by one instance reaches another sharing the cache', async () => {
      const a = new ReadCache({ cache, now: () => clock });
      const b = new ReadCache({ cache, now: () => clock });
      const load = counter();
      expect(await b.read('s', 'k', load)).toEqual({ n: 1 });
      expect(await b.read('s', 'k', load)).toEqual({ n: 1 });
      await a.invalidate('s');
      expect(await b.read('s', 'k', load)).toEqual({ n: 2 });
    });
  });
}
