import { z } from 'zod';
import { type RouteDef, anyObject, route, tool } from './route.js';

/** The tools routes of the REST API. */
export const toolsRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/tools',
    access: 'viewer',
    tag: 'tools',
    summary: 'Every tool with its JSON schemas and risk (used to build edit forms)',
    async handler({ s }) {
      return { tools: s.tools.registry.jsonSchemas() };
    },
  }),
  route({
    method: 'post',
    path: '/api/tools/:name',
    access: 'viewer',
    tag: 'tools',
    mutation: { tool: ':name' },
    summary:
      'Runs one tool through runTool (role, approval and audit checks apply; writes need an approvalId)',
    params: z.object({
      name: z
        .string()
        .regex(/^[a-z][a-z0-9_]{0,99}$/)
        .describe('tool name'),
    }),
    body: z.object({
      args: anyObject.default({}).describe('tool arguments'),
      approvalId: z.string().min(1).max(64).optional().describe('approval covering a write or critical call'),
    }),
    async handler(i) {
      return { output: await tool(i, i.params.name, i.body.args, i.body.approvalId) };
    },
  }),
];
