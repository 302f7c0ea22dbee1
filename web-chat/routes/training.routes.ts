import { z } from 'zod';
import { type RouteDef, idParams, page, route } from './route.js';

/** The training routes of the REST API. */
export const trainingRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/jobs',
    access: 'viewer',
    tag: 'training',
    summary: 'Training jobs, newest first',
    query: z.object({ status: z.string().max(32).optional().describe('only jobs in this state'), ...page }),
    async handler({ ctx, s, query }) {
      return { jobs: await s.training.list(ctx, query as never) };
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs/:id',
    access: 'viewer',
    tag: 'training',
    summary: 'One training job',
    params: idParams,
    async handler({ ctx, s, params }) {
      return s.training.get(ctx, params.id);
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs/:id/metrics',
    access: 'viewer',
    tag: 'training',
    summary: 'Metrics per epoch of a training job (current attempt by default)',
    params: idParams,
    query: z.object({ attempt: z.coerce.number().int().min(1).max(100).optional() }),
    async handler({ ctx, s, params, query }) {
      return { epochs: await s.training.metrics(ctx, params.id, query) };
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs/:id/logs',
    access: 'viewer',
    tag: 'training',
    summary: 'Log lines of a training job',
    params: idParams,
    query: z.object({ tail: z.coerce.number().int().min(1).max(10_000).optional().describe('last N lines') }),
    async handler({ ctx, s, params, query }) {
      return {
        lines: await s.training.logs(ctx, params.id, query.tail === undefined ? {} : { tail: query.tail }),
      };
    },
  }),
];
