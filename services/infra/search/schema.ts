import { z } from 'zod';
import { describeZodError, PlatformError } from '../../../core/errors.js';
import { SEARCH_KINDS, type SearchDoc, type SearchQuery } from './port.js';

/** Most hits one query returns. */
export const MAX_SEARCH_LIMIT = 100;
/** Deepest page reachable (offset + limit), Elasticsearch's default result window. */
export const MAX_SEARCH_WINDOW = 10_000;

const fieldValue = z.union([z.string(), z.number(), z.boolean()]);

/** A SearchDoc as it crosses a boundary (outbox rows, adapters). */
export const searchDocSchema = z.object({
  kind: z.enum(SEARCH_KINDS),
  id: z.string().min(1).max(128),
  projectId: z.string().min(1).max(64),
  title: z.string(),
  text: z.string(),
  tags: z.array(z.string().min(1).max(100)),
  fields: z.record(z.string().min(1).max(100), fieldValue),
  updatedAt: z.number().int().nonnegative(),
});

/** A SearchQuery with its defaults filled in. */
export const searchQuerySchema = z
  .object({
    text: z.string().max(500).optional(),
    kinds: z.array(z.enum(SEARCH_KINDS)).optional(),
    projectId: z.string().min(1).optional(),
    filters: z.record(z.string().min(1), fieldValue).optional(),
    tags: z.array(z.string().min(1)).optional(),
    offset: z.number().int().min(0).default(0),
    limit: z.number().int().min(1).max(MAX_SEARCH_LIMIT).default(20),
  })
  .refine((q) => q.offset + q.limit <= MAX_SEARCH_WINDOW, {
    message: `offset + limit must be at most ${MAX_SEARCH_WINDOW}; narrow the query with filters instead of paging deeper`,
    path: ['offset'],
  });

/** A validated query: offset and limit always set, blank text dropped. */
export type NormalizedQuery = z.infer<typeof searchQuerySchema>;

/** Validates a query for an adapter, throwing `invalid_input` with a readable line when it is malformed. */
export function normalizeQuery(q: SearchQuery): NormalizedQuery {
  const parsed = searchQuerySchema.safeParse(q);
  if (!parsed.success)
    throw new PlatformError('invalid_input', `invalid search query: ${describeZodError(parsed.error)}`);
  const text = parsed.data.text?.trim();
  return { ...parsed.data, text: text === '' ? undefined : text };
}

/** Validates documents before they reach an index, throwing `invalid_input` naming the bad one. */
export function parseDocs(docs: SearchDoc[]): SearchDoc[] {
  return docs.map((doc, i) => {
    const parsed = searchDocSchema.safeParse(doc);
    if (!parsed.success) {
      throw new PlatformError(
        'invalid_input',
        `invalid search document #${i} (${String(doc?.kind)}:${String(doc?.id)}): ${describeZodError(parsed.error)}`,
      );
    }
    return parsed.data;
  });
}

/** The key that identifies a document across kinds: `kind:id`. */
export function docKey(ref: { kind: string; id: string }): string {
  return `${ref.kind}:${ref.id}`;
}
