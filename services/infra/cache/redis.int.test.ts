import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../../../test/services.fixtures.js';
import { isPlatformError } from '../../../core/errors.js';
import { cacheContract } from './cache.contract.js';
import { readCacheContract } from './read-cache.contract.js';
import { RedisCache } from './redis.js';

// Needs Redis: TEST_REDIS_URL (default redis://127.0.0.1:6379).
const skip = await skipWithoutService('Redis', SERVICE_URLS.redis, 'TEST_REDIS_URL');

describe.skipIf(skip)('RedisCache', () => {
  const keyPrefix = `vtest:${uniqueSuffix()}:`;

  cacheContract('redis', async () => ({
    cache: new RedisCache({ url: SERVICE_URLS.redis, keyPrefix }),
    cleanup: async () => {
      const { Redis } = await import('ioredis');
      const admin = new Redis(SERVICE_URLS.redis);
      const keys = await admin.keys(`${keyPrefix}*`);
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    },
  }));

  readCacheContract('redis', async () => ({
    cache: new RedisCache({ url: SERVICE_URLS.redis, keyPrefix: `${keyPrefix}reads:` }),
    cleanup: async () => {
      const { Redis } = await import('ioredis');
      const admin = new Redis(SERVICE_URLS.redis);
      const keys = await admin.keys(`${keyPrefix}reads:*`);
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    },
  }));

  it('stores keys under its prefix and sets the counter TTL in Redis itself', async () => {
    const cache = new RedisCache({ url: SERVICE_URLS.redis, keyPrefix });
    const { Redis } = await import('ioredis');
    const admin = new Redis(SERVICE_URLS.redis);
    try {
      await cache.incr('rate', { ttlMs: 60_000 });
      const ttl = await admin.pttl(`${keyPrefix}rate`);
      expect(ttl).toBeGreaterThan(50_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      await admin.del(`${keyPrefix}rate`);
      await admin.quit();
      await cache.close();
    }
  });

  it('fails fast while Redis is unreachable and reconnects by itself when it is back', async () => {
    // A TCP relay in front of Redis that the test can cut and restore, standing in for a Redis restart.
    const target = new URL(SERVICE_URLS.redis);
    const sockets = new Set<net.Socket>();
    const relay = () =>
      net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 6379), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
      });
    let server = relay();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const url = new URL(SERVICE_URLS.redis);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    const cache = new RedisCache({ url: url.toString(), keyPrefix, connectWaitMs: 300 });
    try {
      await cache.set('survivor', 'yes');
      await new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      });
      const err = await cache.get('survivor').catch((e: unknown) => e);
      expect(isPlatformError(err, 'unavailable')).toBe(true);
      expect((await cache.health()).ok).toBe(false);
      server = relay();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      await expect.poll(async () => (await cache.health()).ok, { timeout: 10_000, interval: 100 }).toBe(true);
      expect(await cache.get('survivor')).toBe('yes');
    } finally {
      await cache.close();
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe('RedisCache with Redis down', () => {
  it('fails fast with unavailable naming REDIS_URL, and reports unhealthy, without crashing', async () => {
    // Port 1 on localhost refuses connections, standing in for a stopped Redis.
    const cache = new RedisCache({ url: 'redis://:s3cret@127.0.0.1:1', connectWaitMs: 300 });
    try {
      const started = Date.now();
      const err = await cache.get('x').catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(isPlatformError(err, 'unavailable')).toBe(true);
      expect((err as Error).message).toContain('REDIS_URL');
      expect((err as Error).message).not.toContain('s3cret');
      const health = await cache.health();
      expect(health).toMatchObject({ port: 'cache', adapter: 'redis', ok: false });
      expect(health.detail).toContain('REDIS_URL');
    } finally {
      await cache.close();
    }
  });
});
