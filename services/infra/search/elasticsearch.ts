import { Client, type estypes } from '@elastic/elasticsearch';
import { PlatformError } from '../../../core/errors.js';
import type { Health } from '../health.js';
import type { SearchDoc, SearchHit, SearchIndex, SearchKind, SearchQuery, SearchResult } from './port.js';
import { docKey, normalizeQuery, parseDocs } from './schema.js';

/** Options of the Elasticsearch index. */
export interface ElasticsearchIndexOptions {
  /** `http(s)://[user:password@]host:port`, from ELASTICSEARCH_URL. Ignored when `client` is given. */
  url?: string;
  /** A ready client (tests pass one wired to @elastic/elasticsearch-mock). */
  client?: Client;
  /** The index is named `<indexPrefix>-search`. */
  indexPrefix?: string;
  /** Refresh after writes so they are searchable at once; for tests, costly in production. */
  refresh?: boolean | 'wait_for';
  requestTimeoutMs?: number;
  /** Retries of a failed request inside the client; the outbox retries on top of this. */
  maxRetries?: number;
}

interface Source {
  key: string;
  kind: SearchKind;
  id: string;
  title: string;
  tags: string[];
  fields: Record<string, string | number | boolean>;
}

/** The explicit mapping: one index, documents of every kind told apart by the `kind` keyword. */
export const SEARCH_MAPPINGS = {
  dynamic: 'strict',
  properties: {
    key: { type: 'keyword' },
    kind: { type: 'keyword' },
    id: { type: 'keyword' },
    projectId: { type: 'keyword' },
    title: { type: 'text', copy_to: 'all' },
    text: { type: 'text', copy_to: 'all' },
    tags: { type: 'keyword', copy_to: 'all' },
    // Every word of the document in one field, so a multi-word query can match words spread across fields.
    all: { type: 'text' },
    // Arbitrary exact-match fields without a mapping per name; leaf values are keywords.
    fields: { type: 'flattened' },
    updatedAt: { type: 'date', format: 'epoch_millis' },
  },
} as const;

const TEXT_FIELDS = ['title^2', 'text', 'all'];

/** The real search index: Elasticsearch 8/9 through @elastic/elasticsearch. */
export class ElasticsearchIndex implements SearchIndex {
  /** The index this adapter reads and writes. */
  readonly index: string;
  private readonly client: Client;
  private readonly refresh: boolean | 'wait_for';
  private readonly where: string;
  private ensured: Promise<void> | undefined;

  constructor({
    url,
    client,
    indexPrefix = 'visioninapp',
    refresh = false,
    requestTimeoutMs = 10_000,
    maxRetries = 2,
  }: ElasticsearchIndexOptions) {
    if (client === undefined && url === undefined)
      throw new PlatformError(
        'invalid_input',
        'ElasticsearchIndex needs a url (ELASTICSEARCH_URL) or a client',
      );
    this.index = `${indexPrefix}-search`;
    this.refresh = refresh;
    if (client !== undefined) {
      this.client = client;
      this.where = 'the configured client';
    } else {
      const parsed = new URL(url!);
      // Host only: the URL may carry credentials.
      this.where = parsed.host;
      this.client = new Client({ node: url!, requestTimeout: requestTimeoutMs, maxRetries });
    }
  }

  async upsert(docs: SearchDoc[]): Promise<void> {
    const valid = parseDocs(docs);
    if (valid.length === 0) return;
    await this.ensureIndex();
    const operations = valid.flatMap((doc) => [
      { index: { _index: this.index, _id: docKey(doc) } },
      { key: docKey(doc), ...doc },
    ]);
    await this.bulk(operations, 'index documents');
  }

  async remove(refs: Array<{ kind: SearchKind; id: string }>): Promise<void> {
    if (refs.length === 0) return;
    await this.ensureIndex();
    await this.bulk(
      refs.map((ref) => ({ delete: { _index: this.index, _id: docKey(ref) } })),
      'remove documents',
    );
  }

  async query(q: SearchQuery): Promise<SearchResult> {
    const query = normalizeQuery(q);
    await this.ensureIndex();
    const filter: estypes.QueryDslQueryContainer[] = [];
    if (query.kinds) filter.push({ terms: { kind: query.kinds } });
    if (query.projectId !== undefined) filter.push({ term: { projectId: query.projectId } });
    for (const [field, value] of Object.entries(query.filters ?? {}))
      filter.push({ term: { [`fields.${field}`]: String(value) } });
    for (const tag of query.tags ?? []) filter.push({ term: { tags: tag } });
    const must: estypes.QueryDslQueryContainer[] =
      query.text === undefined
        ? []
        : [
            {
              bool: {
                // bool_prefix completes the last word; best_fields with fuzziness forgives a typo in it.
                should: [
                  {
                    multi_match: {
                      query: query.text,
                      type: 'bool_prefix',
                      fields: TEXT_FIELDS,
                      operator: 'and',
                      fuzziness: 'AUTO',
                    },
                  },
                  {
                    multi_match: {
                      query: query.text,
                      type: 'best_fields',
                      fields: TEXT_FIELDS,
                      operator: 'and',
                      fuzziness: 'AUTO',
                    },
                  },
                ],
                minimum_should_match: 1,
              },
            },
          ];
    const sort: estypes.SortCombinations[] = [
      ...(query.text === undefined ? [] : ['_score']),
      { updatedAt: 'desc' as const },
      { key: 'asc' as const },
    ];
    const response = await this.call('search', () =>
      this.client.search<Source>({
        index: this.index,
        from: query.offset,
        size: query.limit,
        track_total_hits: true,
        track_scores: query.text !== undefined,
        _source: ['kind', 'id', 'title', 'tags', 'fields'],
        query: { bool: { must, filter } },
        sort,
      }),
    );
    if (response?.hits?.hits === undefined)
      throw new PlatformError(
        'internal',
        `Elasticsearch returned a search response without hits from ${this.index}`,
      );
    const total =
      typeof response.hits.total === 'number' ? response.hits.total : (response.hits.total?.value ?? 0);
    const hits: SearchHit[] = response.hits.hits.flatMap((hit) => {
      const src = hit._source;
      if (src === undefined) return [];
      return [
        {
          kind: src.kind,
          id: src.id,
          title: src.title,
          score: query.text === undefined ? 1 : (hit._score ?? 0),
          fields: src.fields ?? {},
          tags: src.tags ?? [],
        },
      ];
    });
    return { total, hits };
  }

  async clear(): Promise<void> {
    await this.call('delete the index', () =>
      this.client.indices.delete({ index: this.index }, { ignore: [404] }),
    );
    this.ensured = undefined;
  }

  async health(): Promise<Health> {
    try {
      await this.call('ping', () => this.client.ping());
      return { port: 'search', adapter: 'elasticsearch', ok: true };
    } catch (err) {
      return { port: 'search', adapter: 'elasticsearch', ok: false, detail: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Creates the index with its mapping the first time it is needed. */
  private ensureIndex(): Promise<void> {
    this.ensured ??= this.call('create the index', async () => {
      try {
        await this.client.indices.create({
          index: this.index,
          settings: { number_of_shards: 1 },
          mappings: SEARCH_MAPPINGS as never,
        });
      } catch (err) {
        if (isResponseError(err) && err.body?.error?.type === 'resource_already_exists_exception') return;
        throw err;
      }
    }).catch((err: unknown) => {
      this.ensured = undefined;
      throw err;
    });
    return this.ensured;
  }

  private async bulk(operations: object[], what: string): Promise<void> {
    const response = await this.call(what, () => this.client.bulk({ operations, refresh: this.refresh }));
    if (!response.errors) return;
    const failed = response.items
      .map((item) => Object.values(item)[0])
      .filter(
        (r) => r?.error !== undefined && !(r.status === 404 && r.error.type !== 'index_not_found_exception'),
      );
    if (failed.length === 0) return;
    const first = failed[0]!;
    const overloaded = failed.every((r) => r!.status === 429 || r!.status >= 500);
    throw new PlatformError(
      overloaded ? 'unavailable' : 'internal',
      `Elasticsearch could not ${what}: ${failed.length} of ${response.items.length} failed, first ${first._id}: ${first.error!.type}: ${first.error!.reason ?? ''}`,
      { failed: failed.length },
    );
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof PlatformError) throw err;
      if (isResponseError(err)) {
        const status = err.statusCode ?? 0;
        const reason = err.body?.error?.reason ?? err.message;
        if (status === 429 || status >= 500) {
          throw new PlatformError(
            'unavailable',
            `Elasticsearch at ${this.where} could not ${what} (HTTP ${status}): ${reason}; retry later (ELASTICSEARCH_URL)`,
          );
        }
        throw new PlatformError(
          'internal',
          `Elasticsearch rejected the request to ${what} (HTTP ${status}): ${reason}`,
        );
      }
      throw new PlatformError(
        'unavailable',
        `Elasticsearch at ${this.where} is unreachable (${what}): ${(err as Error).message}; check that it runs and that ELASTICSEARCH_URL points at it (ELASTICSEARCH_URL)`,
      );
    }
  }
}

// By name, not instanceof: the client ships separate CommonJS and ESM builds whose error classes differ.
function isResponseError(
  err: unknown,
): err is { name: 'ResponseError'; statusCode?: number; body?: any; message: string } {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'ResponseError';
}
