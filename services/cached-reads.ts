import type { CallContext } from '../core/context.js';
import { canonicalJson } from './approvals/canonical-json.js';
import type { ReadCache } from './infra/cache/read-cache.js';
import type { SearchIndex, SearchQuery, SearchResult } from './infra/search/port.js';

/** The read-cache scope of a project's datasets (summaries, versions). */
export const datasetsReadScope = (projectId: string): string => `datasets:${projectId}`;
/** The read-cache scope of a project's model versions. */
export const modelsReadScope = (projectId: string): string => `models:${projectId}`;
/** The read-cache scope of search results (one index serves every project). */
export const SEARCH_READ_SCOPE = 'search';

type Method<A extends unknown[], R> = (ctx: CallContext, ...args: A) => Promise<R>;
type CachedMethods<T> = {
  [K in keyof T]: T[K] extends Method<infer _A, infer _R> ? K : never;
}[keyof T];

/**
 * `target` with the reads named in `methods` served from the read cache, per project and
 * arguments, under `scope(projectId)`; every other member is the target's own. The reads of these
 * services check nothing beyond the caller's project (the key's scope), so a cached result is what
 * the service would have answered; the domain events listed in `services/read-invalidation.ts`
 * drop the scope whenever what they return changes.
 */
export function withCachedReads<T extends object>(
  target: T,
  reads: ReadCache,
  scope: (projectId: string) => string,
  methods: ReadonlyArray<CachedMethods<T>>,
): T {
  const cached = new Set<PropertyKey>(methods);
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => Promise<unknown>;
      if (!cached.has(prop)) return fn.bind(obj);
      return (ctx: CallContext, ...args: unknown[]) =>
        reads.read(scope(ctx.projectId), `${String(prop)}:${canonicalJson(args)}`, () =>
          fn.call(obj, ctx, ...args),
        );
    },
  });
}

/**
 * A search index whose query results come from the read cache. The indexer applies changes to the
 * index itself and invalidates `SEARCH_READ_SCOPE` when it did (`SearchIndexer`'s `onApplied`);
 * changes made through this wrapper invalidate it too.
 */
export function withCachedSearch(index: SearchIndex, reads: ReadCache): SearchIndex {
  const changed = async <R>(op: Promise<R>): Promise<R> => {
    const result = await op;
    await reads.invalidate(SEARCH_READ_SCOPE);
    return result;
  };
  return {
    query: (q: SearchQuery): Promise<SearchResult> =>
      reads.read(SEARCH_READ_SCOPE, `query:${canonicalJson(q)}`, () => index.query(q)),
    upsert: (docs) => changed(index.upsert(docs)),
    remove: (refs) => changed(index.remove(refs)),
    clear: () => changed(index.clear()),
    health: () => index.health(),
    close: () => index.close(),
  };
}
