import { openApiDocument } from '../openapi.js';
import { type RouteDef, route } from './route.js';

/** The ops routes of the REST API. */
export const opsRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/openapi.json',
    access: 'viewer',
    tag: 'ops',
    summary: 'This OpenAPI 3.1 document, generated from the route table',
    handler({ routes }) {
      return Promise.resolve(openApiDocument(routes));
    },
  }),
  route({
    method: 'get',
    path: '/metrics',
    access: 'admin',
    tag: 'ops',
    summary: 'Prometheus metrics (admins only on the main port; METRICS_PORT serves them on loopback)',
    raw: true,
    async handler({ res, metrics }) {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  }),
];
