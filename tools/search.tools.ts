import { z } from 'zod';
import { SEARCH_KINDS } from '../services/infra/search/port.js';
import { defineTool } from './define.js';

/** Full-text search across datasets, models, jobs, devices and audit entries of the project. */
export const searchPlatform = defineTool({
  name: 'search_platform',
  title: 'Search everything',
  description:
    'Full-text search across datasets, model versions, training jobs, devices and audit entries of the project. Use it when the person names something vaguely ("the helmet run from last week") to find its exact id or name.',
  input: z.object({
    text: z.string().min(1).max(200).describe('words to look for'),
    kinds: z.array(z.enum(SEARCH_KINDS)).optional().describe('limit to these kinds of records'),
    tags: z.array(z.string()).optional().describe('only records with all these tags, e.g. line-3'),
    limit: z.number().int().min(1).max(50).default(10).describe('how many hits to return'),
  }),
  output: z.object({
    total: z.number().describe('records matching'),
    hits: z
      .array(
        z.object({
          kind: z.string().describe('dataset, model, job, device or audit'),
          id: z.string().describe('id of the record'),
          title: z.string().describe('its name or title'),
          score: z.number().describe('relevance, higher is better'),
          tags: z.array(z.string()).describe('its tags'),
        }),
      )
      .describe('best hits first'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const search = ctx.services.search;
    const r = await search.query({
      text: input.text,
      kinds: input.kinds,
      tags: input.tags,
      limit: input.limit,
      projectId: ctx.projectId,
    });
    return {
      total: r.total,
      hits: r.hits.map((h) => ({ kind: h.kind, id: h.id, title: h.title, score: h.score, tags: h.tags })),
    };
  },
});
