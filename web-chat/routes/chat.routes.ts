import { z } from 'zod';
import { type RouteDef, decisionBody, idParams, messageBody, page, route } from './route.js';

/** The chat routes of the REST API. */
export const chatRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/conversations',
    access: 'viewer',
    tag: 'chat',
    summary: 'Conversations of the project, newest first',
    query: z.object({ mine: z.enum(['true', 'false']).optional(), limit: page.limit }),
    async handler({ ctx, s, query }) {
      return {
        conversations: await s.agent.listThreads(ctx, {
          mine: query.mine === 'true',
          limit: query.limit ?? 50,
        }),
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations',
    access: 'viewer',
    tag: 'chat',
    mutation: { agent: true },
    summary:
      'Starts a conversation; answers when the agent pauses (approval, wait) or ends. Events stream over the socket room of the conversation.',
    status: 201,
    body: messageBody.extend({ title: z.string().trim().max(200).optional() }),
    async handler({ ctx, s, body }) {
      return s.agent.startConversation(ctx, {
        message: body.message,
        ...(body.title ? { title: body.title } : {}),
      });
    },
  }),
  route({
    method: 'get',
    path: '/api/conversations/:id',
    access: 'viewer',
    tag: 'chat',
    summary: 'A conversation: plan, steps, pending approval, wait and report',
    params: idParams,
    async handler({ ctx, s, params }) {
      return s.agent.getThread(ctx, params.id);
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations/:id/messages',
    access: 'viewer',
    tag: 'chat',
    mutation: { agent: true },
    summary: 'Sends a new request to a conversation',
    params: idParams,
    body: messageBody,
    async handler({ ctx, s, params, body }) {
      return s.agent.sendMessage(ctx, params.id, body.message);
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations/:id/decide',
    access: 'operator',
    tag: 'chat',
    mutation: { agent: true },
    summary: 'Decides the approval the conversation waits for, then resumes it',
    params: idParams,
    body: decisionBody.extend({ approvalId: z.string().min(1).max(64).describe('the pending approval') }),
    async handler({ ctx, s, params, body }) {
      const { approvalId, decision, args, reason } = body;
      return s.agent.decide(ctx, params.id, {
        approvalId,
        decision,
        ...(args ? { args } : {}),
        ...(reason ? { reason } : {}),
      });
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations/:id/retry',
    access: 'operator',
    tag: 'chat',
    mutation: { agent: true },
    summary: 'Continues a conversation that stopped on an error from its last saved step',
    params: idParams,
    async handler({ ctx, s, params }) {
      return s.agent.retry(ctx, params.id);
    },
  }),

  // Linking your own chat identity is an account action of the signed-in person (like sign-in or an
  // API token), not a tool: the service checks the code and writes the audit entry itself.
];
