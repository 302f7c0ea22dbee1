import { z } from 'zod';
import { PlatformError } from '../../core/errors.js';
import { type RouteDef, approvalIdField, page, refParams, route, tool } from './route.js';

/** The models routes of the REST API. */
export const modelsRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/models',
    access: 'viewer',
    tag: 'models',
    summary: 'Model versions, newest first, with metrics and stages',
    query: z.object({
      name: z.string().max(200).optional().describe('only versions of this model name'),
      stage: z.enum(['candidate', 'staging', 'production']).optional(),
      ...page,
    }),
    async handler({ ctx, s, query }) {
      return { versions: await s.models.list(ctx, query) };
    },
  }),
  route({
    method: 'get',
    path: '/api/models/compare',
    access: 'viewer',
    tag: 'models',
    summary: 'Compares two model versions metric by metric',
    query: z.object({
      a: z.string().min(1).max(300).describe('first version ref'),
      b: z.string().min(1).max(300).describe('second version ref'),
    }),
    async handler({ ctx, s, query }) {
      return s.models.compare(ctx, query.a, query.b);
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref',
    access: 'viewer',
    tag: 'models',
    summary: 'One model version',
    params: refParams,
    async handler({ ctx, s, params }) {
      return s.models.get(ctx, params.ref);
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref/download',
    access: 'viewer',
    tag: 'models',
    summary: "A short-lived download link for one of a version's stored files (model.onnx by default)",
    params: refParams,
    query: z.object({
      file: z.string().min(1).max(200).optional().describe('artifact name, e.g. model.onnx'),
    }),
    response: z.object({ name: z.string(), url: z.string(), sha256: z.string(), size: z.number() }),
    async handler({ ctx, s, params, query, presign }) {
      const v = await s.models.get(ctx, params.ref);
      const file = query.file ?? 'model.onnx';
      const artifact = v.artifacts.find((a) => a.name === file);
      if (artifact === undefined)
        throw new PlatformError(
          'not_found',
          `${v.ref} has no file "${file}"; its files: ${v.artifacts.map((a) => a.name).join(', ') || 'none'}`,
        );
      return {
        name: artifact.name,
        url: await presign(artifact.key),
        sha256: artifact.sha256,
        size: artifact.size,
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref/stages',
    access: 'viewer',
    tag: 'models',
    summary: 'Stage history of a model name',
    params: refParams,
    async handler({ ctx, s, params }) {
      return {
        history: await s.models.stageHistory(ctx, params.ref.split('@')[0]!),
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref/evaluations',
    access: 'viewer',
    tag: 'models',
    summary:
      'Evaluations recorded for a model version (mAP50, mAP50-95, precision, recall, per class), newest first',
    params: refParams,
    query: z.object({
      limit: z.coerce
        .number()
        .int()
        .min(1)
        .max(200)
        .optional()
        .describe('evaluations to return (20 by default)'),
    }),
    async handler({ ctx, s, params, query }) {
      return {
        evaluations: await s.evaluations.list(
          ctx,
          params.ref,
          query.limit === undefined ? {} : { limit: query.limit },
        ),
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/models/:ref/evaluate',
    access: 'operator',
    tag: 'models',
    mutation: { tool: 'evaluate_model' },
    summary:
      'Evaluates a version on a dataset split through the evaluate_model tool; needs an approved approval for these exact arguments',
    params: refParams,
    body: z.object({
      split: z.enum(['train', 'val', 'test']).optional().describe('split to evaluate on (test by default)'),
      dataset: z
        .string()
        .min(1)
        .max(200)
        .optional()
        .describe('dataset name or name@N; the training dataset version by default'),
      maxImages: z.number().int().min(1).max(5000).optional().describe('evaluate at most this many images'),
      approvalId: approvalIdField('evaluate_model'),
    }),
    async handler(i) {
      const { approvalId, ...rest } = i.body;
      return tool(i, 'evaluate_model', { modelVersion: i.params.ref, ...rest }, approvalId);
    },
  }),
  route({
    method: 'post',
    path: '/api/models/:ref/try',
    access: 'viewer',
    tag: 'models',
    mutation: {
      exempt: 'read-only',
      why: "runs the version on the caller's image in memory and answers its boxes; the image is never stored and nothing changes",
    },
    summary:
      'Runs a version on one image (the body: JPEG, PNG or WebP bytes, at most 10 MB) and answers the boxes it finds; nothing is stored',
    params: refParams,
    query: z.object({
      conf: z.coerce
        .number()
        .min(0.01)
        .max(1)
        .optional()
        .describe('keep boxes at or above this score (0.25)'),
    }),
    body: z
      .instanceof(Buffer, {
        message: 'send the image bytes with Content-Type image/jpeg, image/png or image/webp',
      })
      .describe('image bytes'),
    async handler({ ctx, s, params, query, body }) {
      return s.tryouts.detect(ctx, params.ref, body, query.conf === undefined ? {} : { conf: query.conf });
    },
  }),
  route({
    method: 'post',
    path: '/api/models/:ref/promote',
    access: 'operator',
    tag: 'models',
    mutation: { tool: 'promote_model' },
    summary:
      'Promotes a version to a stage through the promote_model tool; needs an approved approval for these exact arguments',
    params: refParams,
    body: z.object({
      stage: z.enum(['candidate', 'staging', 'production']).describe('stage'),
      approvalId: approvalIdField('promote_model'),
    }),
    async handler(i) {
      return tool(i, 'promote_model', { modelVersion: i.params.ref, stage: i.body.stage }, i.body.approvalId);
    },
  }),
];
