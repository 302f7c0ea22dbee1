import type { Health } from '../health.js';

/** Kinds of searchable records. */
export const SEARCH_KINDS = ['dataset', 'model', 'job', 'device', 'audit', 'training_log'] as const;
export type SearchKind = (typeof SEARCH_KINDS)[number];

/** One searchable record, as the domain describes it. */
export interface SearchDoc {
  kind: SearchKind;
  /** Unique within its kind. */
  id: string;
  projectId: string;
  title: string;
  /** Free text: description, classes, log lines. */
  text: string;
  tags: string[];
  /** Exact-match filter fields (e.g. `status: 'running'`, `model: 'helmets'`). */
  fields: Record<string, string | number | boolean>;
  updatedAt: number;
}

/** A query: full text (optional), filters, pagination. */
export interface SearchQuery {
  text?: string;
  kinds?: SearchKind[];
  projectId?: string;
  /** Every filter must match exactly; tags match when the doc has the tag. */
  filters?: Record<string, string | number | boolean>;
  tags?: string[];
  offset?: number;
  limit?: number;
}

export interface SearchHit {
  kind: SearchKind;
  id: string;
  title: string;
  score: number;
  fields: Record<string, string | number | boolean>;
  tags: string[];
}

export interface SearchResult {
  total: number;
  hits: SearchHit[];
}

/** The search port: embedded MiniSearch or Elasticsearch. Fed only through the outbox. */
export interface SearchIndex {
  upsert(docs: SearchDoc[]): Promise<void>;
  remove(refs: Array<{ kind: SearchKind; id: string }>): Promise<void>;
  query(q: SearchQuery): Promise<SearchResult>;
  /** Drops every document (before a full reindex). */
  clear(): Promise<void>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
