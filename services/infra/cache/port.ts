import type { Health } from '../health.js';

/** A held lock; it expires on its own after its TTL unless extended. */
export interface Lock {
  readonly name: string;
  /** Extends the lock to `ttlMs` from now; false when it was lost (expired and taken). */
  extend(ttlMs: number): Promise<boolean>;
  /** Releases the lock if this holder still owns it. */
  release(): Promise<void>;
}

/** The cache port: memory (embedded, TTL, bounded size) or Redis. Values are JSON-serialisable. */
export interface Cache {
  get<T = unknown>(key: string): Promise<T | undefined>;
  /** Stores `value`; with `ttlMs` it disappears after that many milliseconds. */
  set(key: string, value: unknown, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Atomically adds `by` (default 1) and returns the new value; `ttlMs` is set when the key is created. */
  incr(key: string, opts?: { by?: number; ttlMs?: number }): Promise<number>;
  /** Takes the named lock for `ttlMs`, or returns undefined when someone else holds it. */
  acquireLock(name: string, ttlMs: number): Promise<Lock | undefined>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
