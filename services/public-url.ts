import { z } from 'zod';
import type { Db } from './infra/db/port.js';
import type { Logger } from '../core/log.js';

/** The `kv` row holding the URL the serving process(es) advertised. */
export const PUBLIC_URL_KEY = 'platform.public_url';

const advertisedSchema = z.object({
  url: z.url({ protocol: /^https?$/ }),
  host: z.string().optional(),
  pid: z.number().int().optional(),
});

/** Options of `PublicUrl`. */
export interface PublicUrlOptions {
  db: Db;
  log: Logger;
  /** PUBLIC_URL set for this process: always wins. */
  configured?: string;
  /** What to use when nothing is configured or advertised (this process's HOST:PORT). */
  fallback: string;
  /** How long a read of the advertised URL is reused (default 5 s). */
  cacheMs?: number;
}

const trim = (url: string) => url.replace(/\/+$/, '');

/**
 * The URL workers and devices reach the platform's storage at, for signing. A `serve` process
 * advertises its URL in the database when it listens; processes that serve no HTTP (MCP over
 * stdio, CLI commands) sign with that advertised URL instead of their own unused HOST:PORT. An
 * explicit PUBLIC_URL always wins.
 */
export class PublicUrl {
  private own: string | undefined;
  private cached: { url: string | undefined; at: number } | undefined;
  private readonly cacheMs: number;

  constructor(private readonly o: PublicUrlOptions) {
    this.cacheMs = o.cacheMs ?? 5000;
  }

  /** The base URL to sign with now. */
  async current(): Promise<string> {
    if (this.o.configured !== undefined) return trim(this.o.configured);
    if (this.own !== undefined) return this.own;
    return (await this.advertised()) ?? trim(this.o.fallback);
  }

  /** The URL advertised in the database, if any (cached for `cacheMs`). */
  async advertised(): Promise<string | undefined> {
    const now = Date.now();
    if (this.cached !== undefined && now - this.cached.at < this.cacheMs) return this.cached.url;
    let url: string | undefined;
    try {
      const row = await this.o.db.kysely
        .selectFrom('kv')
        .select('v')
        .where('k', '=', PUBLIC_URL_KEY)
        .executeTakeFirst();
      if (row !== undefined) {
        const parsed = advertisedSchema.safeParse(JSON.parse(row.v));
        if (parsed.success) url = trim(parsed.data.url);
        else
          this.o.log.warn(
            { key: PUBLIC_URL_KEY },
            'ignoring an unreadable advertised public URL; a serve process rewrites it when it starts',
          );
      }
    } catch (err) {
      // Before migrations (a fresh database) there is nothing to read yet.
      this.o.log.debug({ err: (err as Error).message }, 'advertised public URL not readable');
    }
    this.cached = { url, at: now };
    return url;
  }

  /**
   * Records `url` as where this process serves storage: this process signs with it at once, and it
   * is written to the database for the others (again by `publish` once migrations ran).
   */
  async advertise(url: string, info: { host?: string; pid?: number } = {}): Promise<void> {
    this.own = trim(this.o.configured ?? url);
    this.ownInfo = info;
    await this.publish().catch((err: Error) =>
      this.o.log.debug(
        { err: err.message },
        'public URL not yet written to the database; written after migrations',
      ),
    );
  }

  /** Writes this process's advertised URL to the database (no-op when it advertised none). */
  async publish(): Promise<void> {
    if (this.own === undefined) return;
    const v = JSON.stringify(advertisedSchema.parse({ url: this.own, ...this.ownInfo }));
    const now = Date.now();
    const db = this.o.db.kysely;
    const updated = await db
      .updateTable('kv')
      .set({ v, updated_at: now })
      .where('k', '=', PUBLIC_URL_KEY)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) > 0) return;
    try {
      await db.insertInto('kv').values({ k: PUBLIC_URL_KEY, v, updated_at: now }).execute();
    } catch {
      // another serve inserted it meanwhile: the latest start wins
      await db.updateTable('kv').set({ v, updated_at: now }).where('k', '=', PUBLIC_URL_KEY).execute();
    }
    this.cached = undefined;
  }

  private ownInfo: { host?: string; pid?: number } = {};
}
