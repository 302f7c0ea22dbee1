import { randomUUID } from 'node:crypto';
import { PlatformError } from '../../../core/errors.js';
import type { Health } from '../health.js';
import type { Cache, Lock } from './port.js';

/** Options of the embedded cache. */
export interface MemoryCacheOptions {
  /** Most entries kept; the least recently used go first when it is exceeded. */
  maxEntries?: number;
}

interface Entry {
  /** The value as JSON, so callers never share mutable objects with the cache. */
  json: string;
  expiresAt: number | undefined;
}

interface Held {
  token: string;
  expiresAt: number;
}

/** The embedded cache: an in-process LRU map with TTLs, atomic counters and expiring locks. */
export class MemoryCache implements Cache {
  private readonly entries = new Map<string, Entry>();
  private readonly locks = new Map<string, Held>();
  private readonly maxEntries: number;
  private lastSweep = 0;

  constructor({ maxEntries = 10_000 }: MemoryCacheOptions = {}) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new PlatformError('invalid_input', `maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const entry = this.live(key);
    if (entry === undefined) return undefined;
    // Re-inserting moves the key to the end of the map's order, which is what LRU eviction reads.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return JSON.parse(entry.json) as T;
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    const json = JSON.stringify(value);
    if (json === undefined)
      throw new PlatformError('invalid_input', `cache value for "${key}" is not JSON-serialisable`);
    this.put(key, { json, expiresAt: expiry(ttlMs) });
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async incr(key: string, opts: { by?: number; ttlMs?: number } = {}): Promise<number> {
    const by = opts.by ?? 1;
    if (!Number.isSafeInteger(by))
      throw new PlatformError('invalid_input', `incr step must be an integer, got ${by}`);
    const entry = this.live(key);
    let current = 0;
    if (entry !== undefined) {
      const parsed: unknown = JSON.parse(entry.json);
      if (typeof parsed !== 'number' || !Number.isSafeInteger(parsed)) {
        throw new PlatformError(
          'invalid_input',
          `cache key "${key}" holds a non-integer value; delete it or use another key`,
        );
      }
      current = parsed;
    }
    const next = current + by;
    this.put(key, {
      json: JSON.stringify(next),
      expiresAt: entry === undefined ? expiry(opts.ttlMs) : entry.expiresAt,
    });
    return next;
  }

  async acquireLock(name: string, ttlMs: number): Promise<Lock | undefined> {
    checkTtl(ttlMs);
    const held = this.locks.get(name);
    if (held !== undefined && held.expiresAt > Date.now()) return undefined;
    const token = randomUUID();
    this.locks.set(name, { token, expiresAt: Date.now() + ttlMs });
    return {
      name,
      extend: async (ms: number) => {
        checkTtl(ms);
        const current = this.locks.get(name);
        if (current?.token !== token || current.expiresAt <= Date.now()) return false;
        current.expiresAt = Date.now() + ms;
        return true;
      },
      release: async () => {
        if (this.locks.get(name)?.token === token) this.locks.delete(name);
      },
    };
  }

  async health(): Promise<Health> {
    return { port: 'cache', adapter: 'memory', ok: true };
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.locks.clear();
  }

  /** Number of entries held, expired ones included until they are touched or evicted. */
  get size(): number {
    return this.entries.size;
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private put(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size <= this.maxEntries) return;
    // Expired entries go before live ones (swept at most once a second, so a full cache stays O(1) per write);
    // then the least recently used.
    const now = Date.now();
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      for (const [k, e] of this.entries) {
        if (e.expiresAt !== undefined && e.expiresAt <= now) this.entries.delete(k);
      }
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) return;
      this.entries.delete(k);
    }
  }
}

function expiry(ttlMs: number | undefined): number | undefined {
  if (ttlMs === undefined) return undefined;
  checkTtl(ttlMs);
  return Date.now() + ttlMs;
}

function checkTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0)
    throw new PlatformError('invalid_input', `TTL must be a positive number of milliseconds, got ${ttlMs}`);
}
