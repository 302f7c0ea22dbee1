import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Options, type Store } from 'express-rate-limit';
import type { Cache } from '../services/infra/cache/port.js';
import { PlatformError } from '../core/errors.js';
import { sendError } from './http-errors.js';

/**
 * An express-rate-limit store on the cache port's atomic `incr`: fixed windows keyed by window
 * number, so every instance sharing Redis counts together (the in-memory cache serves one instance).
 */
export class CacheRateLimitStore implements Store {
  private windowMs = 60_000;
  readonly localKeys = false;

  constructor(
    private readonly cache: Cache,
    readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {}

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  async increment(key: string): Promise<{ totalHits: number; resetTime: Date }> {
    const window = Math.floor(this.now() / this.windowMs);
    const totalHits = await this.cache.incr(this.keyOf(key, window), { ttlMs: this.windowMs + 1000 });
    return { totalHits, resetTime: new Date((window + 1) * this.windowMs) };
  }

  async decrement(key: string): Promise<void> {
    await this.cache.incr(this.keyOf(key, Math.floor(this.now() / this.windowMs)), {
      by: -1,
      ttlMs: this.windowMs + 1000,
    });
  }

  async resetKey(key: string): Promise<void> {
    await this.cache.delete(this.keyOf(key, Math.floor(this.now() / this.windowMs)));
  }

  private keyOf(key: string, window: number): string {
    return `rl:${this.prefix}:${window}:${key}`;
  }
}

/** Limits of the API: requests per window per client, and sign-in attempts per window per address. */
export interface RateLimits {
  windowMs: number;
  api: number;
  login: number;
}

/** Default limits: 600 API requests and 10 sign-in attempts per minute. */
export const DEFAULT_RATE_LIMITS: RateLimits = { windowMs: 60_000, api: 600, login: 10 };

/** A rate-limit middleware on the cache store; over the limit answers 429 with a message saying when to retry. */
export function rateLimiter(
  cache: Cache,
  name: string,
  windowMs: number,
  limit: number,
  what: string,
): RequestHandler {
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store: new CacheRateLimitStore(cache, name),
    keyGenerator: (req) => ipKeyGenerator(req.ip ?? 'unknown'),
    handler: (req, res) => {
      const reset = (req as unknown as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = reset
        ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000))
        : Math.ceil(windowMs / 1000);
      res.set('Retry-After', String(seconds));
      sendError(res, new PlatformError('rate_limited', `too many ${what}; wait ${seconds} s and try again`));
    },
  });
}
