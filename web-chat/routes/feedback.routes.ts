import { z } from 'zod';
import { reviewFeedbackTool } from '../../tools/feedback.tools.js';
import { type RouteDef, approvalIdField, idParams, page, route, tool } from './route.js';

/** The feedback routes of the REST API. */
export const feedbackRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/feedback',
    access: 'viewer',
    tag: 'feedback',
    summary: 'The feedback review queue (oldest first)',
    query: z.object({
      status: z.string().max(32).optional(),
      deviceId: z.string().max(128).optional(),
      ...page,
    }),
    async handler({ ctx, s, query }) {
      return s.feedback.list(ctx, query as never);
    },
  }),
  route({
    method: 'get',
    path: '/api/feedback/:id',
    access: 'viewer',
    tag: 'feedback',
    summary: 'One feedback sample with its predicted boxes and a short-lived image URL',
    params: idParams,
    async handler({ ctx, s, params }) {
      const fb = s.feedback;
      const sample = await fb.get(ctx, params.id);
      return { ...sample, url: await fb.imageUrl(ctx, params.id) };
    },
  }),
  route({
    method: 'post',
    path: '/api/feedback/:id/review',
    access: 'operator',
    tag: 'feedback',
    mutation: { tool: 'review_feedback' },
    summary:
      'Accepts (optionally with corrected boxes) or rejects a feedback sample through the review_feedback tool; needs an approved approval for these exact arguments',
    params: idParams,
    body: reviewFeedbackTool.input
      .omit({ sampleId: true })
      .extend({ approvalId: approvalIdField('review_feedback') }),
    async handler(i) {
      const { approvalId, ...review } = i.body;
      return tool(i, 'review_feedback', { sampleId: i.params.id, ...review }, approvalId);
    },
  }),
];
