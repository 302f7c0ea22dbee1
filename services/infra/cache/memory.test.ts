import { describe, expect, it } from 'vitest';
import { cacheContract } from './cache.contract.js';
import { MemoryCache } from './memory.js';

cacheContract('memory', async () => ({ cache: new MemoryCache() }));

describe(MemoryCache.name, () => {
  it('keeps at most maxEntries, evicting the least recently used', async () => {
    const cache = new MemoryCache({ maxEntries: 3 });
    await cache.set('a', 1);
    await cache.set('b', 2);
    await cache.set('c', 3);
    expect(await cache.get('a')).toBe(1);
    await cache.set('d', 4);
    expect(cache.size).toBe(3);
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('a')).toBe(1);
    expect(await cache.get('c')).toBe(3);
    expect(await cache.get('d')).toBe(4);
  });

  it('evicts expired entries before live ones', async () => {
    const cache = new MemoryCache({ maxEntries: 2 });
    await cache.set('live', 1);
    await cache.set('short', 2, 20);
    await new Promise((r) => setTimeout(r, 40));
    await cache.set('new', 3);
    expect(await cache.get('live')).toBe(1);
    expect(await cache.get('new')).toBe(3);
  });

  it('refuses a maxEntries below 1', () => {
    expect(() => new MemoryCache({ maxEntries: 0 })).toThrow(/maxEntries/);
  });
});
