import { z } from 'zod';
import { searchDatasets } from '../../services/datasets/index.js';
import { type RouteDef, page, refParams, route } from './route.js';

/** The datasets routes of the REST API. */
export const datasetsRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/datasets',
    access: 'viewer',
    tag: 'datasets',
    summary:
      'Datasets of the project with class counts; `q` searches name, description, tags and classes through the search index',
    query: z.object({ q: z.string().trim().max(200).optional().describe('search text') }),
    async handler({ ctx, s, query }) {
      const q = query.q;
      const items = q
        ? await searchDatasets(ctx, { search: s.tools.services.search, datasets: s.datasets }, q)
        : await s.datasets.list(ctx);
      return { datasets: items };
    },
  }),
  route({
    method: 'get',
    path: '/api/datasets/:ref',
    access: 'viewer',
    tag: 'datasets',
    summary: 'One dataset version with its statistics (class counts, splits)',
    params: refParams,
    async handler({ ctx, s, params }) {
      return s.datasets.get(ctx, params.ref);
    },
  }),
  route({
    method: 'get',
    path: '/api/datasets/:ref/images',
    access: 'viewer',
    tag: 'datasets',
    summary: 'Sample images of a dataset version with their boxes and short-lived image URLs',
    params: refParams,
    query: z.object({
      split: z.enum(['train', 'val', 'test']).optional().describe('only this split'),
      ...page,
    }),
    async handler({ ctx, s, params, query, presign }) {
      const { total, items } = await s.datasets.listImages(ctx, params.ref, {
        split: query.split,
        offset: query.offset ?? 0,
        limit: Math.min(query.limit ?? 24, 200),
      });
      return {
        total,
        items: await Promise.all(
          items.map(async (i) => ({
            ...i,
            url: await presign(i.thumbnailKey ?? i.imageKey),
            fullUrl: await presign(i.imageKey),
          })),
        ),
      };
    },
  }),
];
