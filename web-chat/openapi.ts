import { z } from 'zod';
import { ERROR_SCHEMA, type RouteDef } from './routes/route.js';

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  delete json.$schema;
  return json;
}

function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (schema === undefined) return [];
  const json = schemaOf(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
    schema: s,
  }));
}

const STATUS_TEXT: Record<string, string> = {
  '400': 'invalid input: the message says which field and what is expected',
  '401': 'not signed in, or the session or token expired',
  '403': 'signed in, but the role is too low, or the CSRF token is missing',
  '404': 'not found',
  '409': 'conflict, or an approval is required first',
  '429': 'rate limited: retry after the Retry-After header',
  '503': 'a service this route needs is unavailable or not enabled',
};

/** The OpenAPI 3.1 document of the REST API, generated from the route table's zod schemas. */
export function openApiDocument(
  routes: readonly RouteDef[],
  opts: { title?: string; version?: string; serverUrl?: string } = {},
): Json {
  const paths: Record<string, Record<string, Json>> = {};
  const errorRef = { $ref: '#/components/schemas/Error' };
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z_]+)/g, '{$1}');
    const responses: Record<string, Json> = {
      [String(r.status ?? 200)]: r.raw
        ? { description: 'success', content: { 'text/plain': { schema: { type: 'string' } } } }
        : {
            description: 'success',
            content: {
              'application/json': {
                schema: r.response ? schemaOf(r.response, 'output') : { type: 'object' },
              },
            },
          },
    };
    const codes = ['400', '404', '409', '429', '503', ...(r.access === 'public' ? [] : ['401', '403'])];
    for (const code of codes)
      responses[code] = {
        description: STATUS_TEXT[code],
        content: { 'application/json': { schema: errorRef } },
      };
    const op: Json = {
      operationId: `${r.method}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: r.summary,
      tags: [r.tag],
      'x-required-role': r.access,
      security: r.access === 'public' ? [] : [{ sessionCookie: [], csrfHeader: [] }, { bearerToken: [] }],
      parameters: [...parametersOf(r.params, 'path'), ...parametersOf(r.query, 'query')],
      responses,
    };
    if (r.body)
      op.requestBody = {
        required: true,
        content: { 'application/json': { schema: schemaOf(r.body, 'input') } },
      };
    (paths[path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: opts.title ?? 'VisionInApp API',
      version: opts.version ?? '0.1.0',
      description:
        'REST API of VisionInApp. Browsers use the session cookie plus the X-CSRF-Token header (double-submit of the via_csrf cookie) on mutating requests; machines send "Authorization: Bearer via_…" API tokens with the "api" scope. Each operation names its minimum role in x-required-role.',
    },
    ...(opts.serverUrl ? { servers: [{ url: opts.serverUrl }] } : {}),
    paths,
    components: {
      schemas: { Error: schemaOf(ERROR_SCHEMA, 'output') },
      securitySchemes: {
        sessionCookie: { type: 'apiKey', in: 'cookie', name: 'via_session' },
        csrfHeader: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token' },
        bearerToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'API token "via_<id>_<secret>", or a Firebase ID token in Firebase mode',
        },
      },
    },
  };
}
