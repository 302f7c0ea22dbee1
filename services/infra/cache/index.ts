import type { Logger } from '../../../core/log.js';
import { MemoryCache } from './memory.js';
import type { Cache } from './port.js';

export type { Cache, Lock } from './port.js';
export { MemoryCache } from './memory.js';
export type { MemoryCacheOptions } from './memory.js';
export { ReadCache } from './read-cache.js';
export type { Expiring, ReadCacheOptions } from './read-cache.js';
export type { RedisCacheOptions } from './redis.js';

/** Builds the configured cache: Redis when `redisUrl` is set (ioredis loaded lazily), memory otherwise. */
export async function createCache(
  opts: { redisUrl?: string; keyPrefix?: string; maxEntries?: number; log?: Logger } = {},
): Promise<Cache> {
  if (opts.redisUrl) {
    const { RedisCache } = await import('./redis.js');
    return new RedisCache({ url: opts.redisUrl, keyPrefix: opts.keyPrefix, log: opts.log });
  }
  return new MemoryCache({ maxEntries: opts.maxEntries });
}
