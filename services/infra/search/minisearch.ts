import MiniSearch, { type SearchResult as MiniResult } from 'minisearch';
import type { Health } from '../health.js';
import type { SearchDoc, SearchHit, SearchIndex, SearchKind, SearchQuery, SearchResult } from './port.js';
import { docKey, normalizeQuery, parseDocs } from './schema.js';

interface Stored {
  key: string;
  kind: SearchKind;
  id: string;
  projectId: string;
  title: string;
  tags: string[];
  fields: Record<string, string | number | boolean>;
  updatedAt: number;
}

/** The embedded search index: MiniSearch in process memory, rebuilt from the database at start. */
export class MiniSearchIndex implements SearchIndex {
  private readonly mini = MiniSearchIndex.create();

  private static create(): MiniSearch<SearchDoc & { key: string }> {
    return new MiniSearch<SearchDoc & { key: string }>({
      idField: 'key',
      // Tags are indexed as words under `tagText`; `tags` itself is stored untouched for filters and hits.
      fields: ['title', 'text', 'tagText'],
      storeFields: ['key', 'kind', 'id', 'projectId', 'title', 'tags', 'fields', 'updatedAt'],
      extractField: (doc, field) =>
        field === 'tagText' ? doc.tags.join(' ') : (doc as unknown as Record<string, string>)[field]!,
      searchOptions: { boost: { title: 2 }, prefix: true, fuzzy: 0.2, combineWith: 'AND' },
    });
  }

  async upsert(docs: SearchDoc[]): Promise<void> {
    for (const doc of parseDocs(docs)) {
      const entry = { ...doc, key: docKey(doc) };
      if (this.mini.has(entry.key)) this.mini.replace(entry);
      else this.mini.add(entry);
    }
  }

  async remove(refs: Array<{ kind: SearchKind; id: string }>): Promise<void> {
    for (const ref of refs) {
      const key = docKey(ref);
      if (this.mini.has(key)) this.mini.discard(key);
    }
  }

  async query(q: SearchQuery): Promise<SearchResult> {
    const query = normalizeQuery(q);
    const kinds = query.kinds && new Set<string>(query.kinds);
    const filters = Object.entries(query.filters ?? {});
    const tags = query.tags ?? [];
    const filter = (r: MiniResult): boolean => {
      const doc = r as unknown as Stored;
      if (kinds && !kinds.has(doc.kind)) return false;
      if (query.projectId !== undefined && doc.projectId !== query.projectId) return false;
      // Values compare as strings, as Elasticsearch's keyword fields do.
      if (filters.some(([k, v]) => doc.fields[k] === undefined || String(doc.fields[k]) !== String(v)))
        return false;
      return tags.every((t) => doc.tags.includes(t));
    };
    const results = this.mini.search(query.text ?? MiniSearch.wildcard, { filter });
    const stored = results as unknown as Array<Stored & { score: number }>;
    stored.sort((a, b) =>
      query.text !== undefined && b.score !== a.score
        ? b.score - a.score
        : b.updatedAt - a.updatedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
    );
    const hits: SearchHit[] = stored.slice(query.offset, query.offset + query.limit).map((d) => ({
      kind: d.kind,
      id: d.id,
      title: d.title,
      score: query.text === undefined ? 1 : d.score,
      fields: { ...d.fields },
      tags: [...d.tags],
    }));
    return { total: stored.length, hits };
  }

  async clear(): Promise<void> {
    this.mini.removeAll();
  }

  async health(): Promise<Health> {
    return { port: 'search', adapter: 'minisearch', ok: true };
  }

  async close(): Promise<void> {
    this.mini.removeAll();
  }

  /** Number of documents indexed. */
  get size(): number {
    return this.mini.documentCount;
  }
}
