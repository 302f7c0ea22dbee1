import { z } from 'zod';
import { type RouteDef, anyObject, decisionBody, idParams, page, route, tool } from './route.js';

/** The approvals routes of the REST API. */
export const approvalsRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/approvals',
    access: 'viewer',
    tag: 'approvals',
    summary: 'Approval requests of the project (the inbox), newest first',
    query: z.object({
      status: z.enum(['pending', 'approved', 'rejected', 'executed', 'expired']).optional(),
      threadId: z.string().max(191).optional(),
      ...page,
    }),
    async handler({ ctx, s, query }) {
      return { approvals: await s.approvals.list(ctx, query) };
    },
  }),
  route({
    method: 'post',
    path: '/api/approvals',
    access: 'operator',
    tag: 'approvals',
    mutation: {
      exempt: 'approval-request',
      why: 'asking for an approval is the gate itself: nothing runs until someone decides and the tool runs through runTool',
    },
    summary: 'Asks approval for a tool call with exact arguments (risk from the tool registry)',
    status: 201,
    body: z.object({
      tool: z.string().min(1).max(100).describe('tool name'),
      args: anyObject.describe('exact arguments'),
      reason: z.string().trim().min(1).max(2000).describe('why the step is needed'),
    }),
    async handler({ ctx, s, body }) {
      const registry = s.tools.registry;
      const args = registry.parseInput(body.tool, body.args);
      return s.approvals.request(ctx, {
        tool: body.tool,
        args,
        risk: registry.get(body.tool).risk,
        reason: body.reason,
      });
    },
  }),
  route({
    method: 'get',
    path: '/api/approvals/:id',
    access: 'viewer',
    tag: 'approvals',
    summary: 'One approval request with its arguments, risk, policy and decision',
    params: idParams,
    async handler({ ctx, s, params }) {
      return s.approvals.get(ctx, params.id);
    },
  }),
  route({
    method: 'post',
    path: '/api/approvals/:id/decide',
    access: 'operator',
    tag: 'approvals',
    mutation: { tool: 'decide_approval' },
    summary:
      'Approves, edits or rejects a request under its policy (through the decide_approval tool); deciding twice changes nothing',
    params: idParams,
    body: decisionBody,
    async handler(i) {
      return tool(i, 'decide_approval', { approvalId: i.params.id, ...i.body });
    },
  }),
];
