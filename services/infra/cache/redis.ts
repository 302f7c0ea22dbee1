import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { PlatformError } from '../../../core/errors.js';
import type { Health } from '../health.js';
import type { Logger } from '../../../core/log.js';
import type { Cache, Lock } from './port.js';

/** Options of the Redis cache. */
export interface RedisCacheOptions {
  /** `redis://[user:password@]host:port[/db]`, from REDIS_URL. */
  url: string;
  /** Prepended to every key, so several deployments or test runs can share one Redis. */
  keyPrefix?: string;
  /** How long a call waits for a (re)connecting Redis before failing with `unavailable`. */
  connectWaitMs?: number;
  /** How long one command may take before it fails with `unavailable`. */
  commandTimeoutMs?: number;
  log?: Logger;
}

// INCRBY and the creation-time PEXPIRE run as one script, so a counter never lives without its TTL.
const INCR_SCRIPT = `
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value`;
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const EXTEND_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

type ScriptedRedis = Redis & {
  vIncr(key: string, by: number, ttlMs: number): Promise<number>;
  vRelease(key: string, token: string): Promise<number>;
  vExtend(key: string, token: string, ttlMs: number): Promise<number>;
};

/** The real cache: Redis through ioredis. Fails fast with `unavailable` while Redis is down and reconnects by itself. */
export class RedisCache implements Cache {
  private readonly client: ScriptedRedis;
  private readonly where: string;
  private readonly connectWaitMs: number;
  private lastError: string | undefined;
  private closed = false;

  constructor({
    url,
    keyPrefix = '',
    connectWaitMs = 1000,
    commandTimeoutMs = 2000,
    log,
  }: RedisCacheOptions) {
    const parsed = new URL(url);
    // Host and port only: the URL may carry a password.
    this.where = `${parsed.hostname}:${parsed.port || '6379'}`;
    this.connectWaitMs = connectWaitMs;
    const client = new Redis(url, {
      keyPrefix,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      commandTimeout: commandTimeoutMs,
      connectTimeout: 3000,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3000),
    });
    client.defineCommand('vIncr', { numberOfKeys: 1, lua: INCR_SCRIPT });
    client.defineCommand('vRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    client.defineCommand('vExtend', { numberOfKeys: 1, lua: EXTEND_SCRIPT });
    client.on('error', (err: Error) => {
      // ioredis emits an error per failed reconnect attempt; log only when the reason changes.
      if (err.message !== this.lastError)
        log?.warn({ err: err.message, where: this.where }, 'Redis connection error (REDIS_URL)');
      this.lastError = err.message;
    });
    client.on('ready', () => {
      if (this.lastError !== undefined) log?.info({ where: this.where }, 'Redis connection restored');
      this.lastError = undefined;
    });
    this.client = client as ScriptedRedis;
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const raw = await this.run(() => this.client.get(key));
    return raw === null ? undefined : (JSON.parse(raw) as T);
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    const json = JSON.stringify(value);
    if (json === undefined)
      throw new PlatformError('invalid_input', `cache value for "${key}" is not JSON-serialisable`);
    if (ttlMs === undefined) {
      await this.run(() => this.client.set(key, json));
      return;
    }
    const ttl = toTtl(ttlMs);
    await this.run(() => this.client.set(key, json, 'PX', ttl));
  }

  async delete(key: string): Promise<void> {
    await this.run(() => this.client.del(key));
  }

  async incr(key: string, opts: { by?: number; ttlMs?: number } = {}): Promise<number> {
    const by = opts.by ?? 1;
    if (!Number.isSafeInteger(by))
      throw new PlatformError('invalid_input', `incr step must be an integer, got ${by}`);
    const ttl = opts.ttlMs === undefined ? 0 : toTtl(opts.ttlMs);
    return Number(await this.run(() => this.client.vIncr(key, by, ttl), key));
  }

  async acquireLock(name: string, ttlMs: number): Promise<Lock | undefined> {
    const key = `lock:${name}`;
    const token = randomUUID();
    const ttl = toTtl(ttlMs);
    const ok = await this.run(() => this.client.set(key, token, 'PX', ttl, 'NX'));
    if (ok !== 'OK') return undefined;
    return {
      name,
      extend: async (ms: number) => {
        const next = toTtl(ms);
        return (await this.run(() => this.client.vExtend(key, token, next))) === 1;
      },
      release: async () => {
        await this.run(() => this.client.vRelease(key, token));
      },
    };
  }

  async health(): Promise<Health> {
    try {
      await this.run(() => this.client.ping());
      return { port: 'cache', adapter: 'redis', ok: true };
    } catch (err) {
      return { port: 'cache', adapter: 'redis', ok: false, detail: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.client.status === 'ready') await this.client.quit();
      else this.client.disconnect();
    } catch {
      this.client.disconnect();
    }
  }

  private async run<T>(call: () => Promise<T>, key?: string): Promise<T> {
    if (this.closed) throw new PlatformError('unavailable', 'the Redis cache is closed; create a new one');
    await this.whenReady();
    try {
      return await call();
    } catch (err) {
      const { name, message } = err as Error;
      // A ReplyError is Redis refusing the command, not Redis being down.
      if (name === 'ReplyError') {
        if (/not an integer/i.test(message)) {
          throw new PlatformError(
            'invalid_input',
            `cache key "${key ?? '?'}" holds a non-integer value; delete it or use another key`,
          );
        }
        throw new PlatformError('internal', `Redis rejected a cache command: ${message}`);
      }
      throw this.unavailable(message);
    }
  }

  private whenReady(): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    if (this.client.status === 'wait') void this.client.connect().catch(() => undefined);
    return new Promise((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        reject(this.unavailable(this.lastError ?? `not connected after ${this.connectWaitMs} ms`));
      }, this.connectWaitMs);
      this.client.once('ready', onReady);
    });
  }

  private unavailable(reason: string): PlatformError {
    return new PlatformError(
      'unavailable',
      `Redis at ${this.where} is unavailable: ${reason}; check that it runs and that REDIS_URL points at it (REDIS_URL)`,
    );
  }
}

function toTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0)
    throw new PlatformError('invalid_input', `TTL must be a positive number of milliseconds, got ${ttlMs}`);
  return Math.ceil(ttlMs);
}
