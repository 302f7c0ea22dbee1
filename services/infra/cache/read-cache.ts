import type { Cache } from './port.js';

/** Options of a read cache. */
export interface ReadCacheOptions {
  /** The cache port (memory, or Redis shared by every serve instance). */
  cache: Cache;
  /** Longest time a result is served from the cache, also when no invalidation arrives (default 60 s). */
  ttlMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

/** What a loader returns when its result is only valid until a known time (e.g. the first approval to expire). */
export interface Expiring<T> {
  value: T;
  /** Epoch ms after which the result must be loaded again; undefined: only the TTL applies. */
  validUntil?: number | undefined;
}

interface Stored {
  value: unknown;
  validUntil: number | null;
}

/**
 * Results of hot reads kept in the cache port, grouped in scopes (e.g. `approvals:<projectId>`)
 * that the domain events which change them invalidate. Invalidation bumps the scope's generation,
 * which is part of every key: in the shared cache (so every serve instance on one Redis stops using
 * the old entries) and in this process synchronously (so a read right after a local change never
 * waits on a Redis round trip). A result loaded while its scope was invalidated is not stored.
 */
export class ReadCache {
  private readonly cache: Cache;
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** Invalidations seen in this process per scope; part of the key, bumped synchronously. */
  private readonly local = new Map<string, number>();
  private hits = 0;
  private misses = 0;

  constructor({ cache, ttlMs = 60_000, now = Date.now }: ReadCacheOptions) {
    this.cache = cache;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  /** The cached result of `load` for `key` in `scope`, or a fresh one (then stored). */
  async read<T>(scope: string, key: string, load: () => Promise<T>): Promise<T> {
    return this.readExpiring(scope, key, async () => ({ value: await load() }));
  }

  /** As `read`, for results that stop being valid at a time the loader knows. */
  async readExpiring<T>(scope: string, key: string, load: () => Promise<Expiring<T>>): Promise<T> {
    const before = await this.generation(scope);
    const fullKey = `read:${scope}:${before}:${key}`;
    const hit = await this.cache.get<Stored>(fullKey);
    if (hit !== undefined && (hit.validUntil === null || hit.validUntil > this.now())) {
      this.hits++;
      return hit.value as T;
    }
    this.misses++;
    const loaded = await load();
    // Stored only when nothing invalidated the scope while loading: the load may predate that change.
    if ((await this.generation(scope)) === before) {
      const ttl =
        loaded.validUntil === undefined ? this.ttlMs : Math.min(this.ttlMs, loaded.validUntil - this.now());
      if (ttl > 0)
        await this.cache.set(
          fullKey,
          { value: loaded.value, validUntil: loaded.validUntil ?? null } satisfies Stored,
          ttl,
        );
    }
    return loaded.value;
  }

  /** Drops every cached result of these scopes (here at once, on other instances through the shared cache). */
  async invalidate(...scopes: string[]): Promise<void> {
    for (const scope of scopes) this.local.set(scope, (this.local.get(scope) ?? 0) + 1);
    await Promise.all(scopes.map((scope) => this.cache.incr(`read-gen:${scope}`, { by: 1 })));
  }

  /** Hits and misses so far (for benchmarks and metrics). */
  stats(): { hits: number; misses: number } {
    return { hits: this.hits, misses: this.misses };
  }

  private async generation(scope: string): Promise<string> {
    const shared = (await this.cache.get<number>(`read-gen:${scope}`)) ?? 0;
    return `${this.local.get(scope) ?? 0}.${shared}`;
  }
}
