import { MiniSearchIndex } from './minisearch.js';
import type { SearchIndex } from './port.js';

export { SEARCH_KINDS } from './port.js';
export type { SearchDoc, SearchHit, SearchIndex, SearchKind, SearchQuery, SearchResult } from './port.js';
export { MiniSearchIndex } from './minisearch.js';
export type { ElasticsearchIndexOptions } from './elasticsearch.js';
export { MAX_SEARCH_LIMIT, MAX_SEARCH_WINDOW, searchDocSchema, searchQuerySchema } from './schema.js';
export { enqueueIndex, SearchIndexer } from './outbox.js';
export type { OutboxOp, SearchIndexerOptions } from './outbox.js';

/** Builds the configured search index: Elasticsearch when `elasticsearchUrl` is set (client loaded lazily), MiniSearch otherwise. */
export async function createSearchIndex(
  opts: { elasticsearchUrl?: string; indexPrefix?: string } = {},
): Promise<SearchIndex> {
  if (opts.elasticsearchUrl) {
    const { ElasticsearchIndex } = await import('./elasticsearch.js');
    return new ElasticsearchIndex({ url: opts.elasticsearchUrl, indexPrefix: opts.indexPrefix });
  }
  return new MiniSearchIndex();
}
