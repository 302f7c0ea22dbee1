import { z } from 'zod';
import { type RouteDef, page, route } from './route.js';

/** The audit routes of the REST API. */
export const auditRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/audit',
    access: 'operator',
    tag: 'audit',
    summary: 'Audit log entries, filtered by conversation, user, tool, action and time',
    query: z.object({
      threadId: z.string().max(191).optional(),
      userId: z.string().max(191).optional(),
      tool: z.string().max(100).optional(),
      action: z.string().max(100).optional(),
      from: z.coerce.number().int().min(0).optional().describe('epoch ms'),
      to: z.coerce.number().int().min(0).optional().describe('epoch ms'),
      order: z.enum(['asc', 'desc']).optional(),
      ...page,
    }),
    async handler({ ctx, s, query }) {
      const result = await s.audit.query({ ...query, projectId: ctx.projectId });
      // people read names: each entry's actor gets the member's name (ids stay for links and filters)
      const names = new Map((await s.accounts.listMembers(ctx.projectId)).map((m) => [m.userId, m.name]));
      return {
        ...result,
        entries: result.entries.map((e) => ({ ...e, actorName: names.get(e.actor.id) ?? null })),
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/audit/verify',
    access: 'operator',
    tag: 'audit',
    summary:
      "Verifies the project's audit hash chain (edits, deletions, reordering, truncation: signed head, checkpoints and anchor file)",
    query: z.object({
      sinceCheckpoint: z
        .enum(['true', 'false'])
        .optional()
        .describe('true: recompute only the entries after the latest signed checkpoint'),
    }),
    async handler({ ctx, s, query }) {
      return s.audit.verify(ctx.projectId, { sinceCheckpoint: query.sinceCheckpoint === 'true' });
    },
  }),
];
