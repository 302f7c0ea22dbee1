import { z } from 'zod';
import { type RouteDef, idParams, modelRefsOf, page, route } from './route.js';

/** The fleet routes of the REST API. */
export const fleetRoutes: RouteDef[] = [
  route({
    method: 'get',
    path: '/api/devices',
    access: 'viewer',
    tag: 'fleet',
    summary: 'Devices with model version, health and last seen; `tag` selects a line, e.g. line-3',
    query: z.object({ tag: z.string().max(100).optional(), online: z.enum(['true', 'false']).optional() }),
    async handler({ ctx, s, query }) {
      const filter = {
        ...(query.tag ? { tag: query.tag } : {}),
        ...(query.online ? { online: query.online === 'true' } : {}),
      };
      const devices = await s.fleet.list(ctx, filter);
      const refs = await modelRefsOf(
        ctx,
        s,
        devices.flatMap((d) => [d.modelVersionId, d.previousModelVersionId]),
      );
      const ref = (mv: string | null) => (mv === null ? null : (refs.get(mv) ?? mv));
      return {
        devices: devices.map((d) => ({
          ...d,
          model: ref(d.modelVersionId),
          previousModel: ref(d.previousModelVersionId),
        })),
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/devices/:id',
    access: 'viewer',
    tag: 'fleet',
    summary: 'One device',
    params: idParams,
    async handler({ ctx, s, params }) {
      const d = await s.fleet.get(ctx, params.id);
      const refs = await modelRefsOf(ctx, s, [d.modelVersionId, d.previousModelVersionId]);
      const ref = (mv: string | null) => (mv === null ? null : (refs.get(mv) ?? mv));
      return { ...d, model: ref(d.modelVersionId), previousModel: ref(d.previousModelVersionId) };
    },
  }),
  route({
    method: 'get',
    path: '/api/devices/:id/history',
    access: 'viewer',
    tag: 'fleet',
    summary:
      "A device's heartbeat figures (fps, p95 latency, mean confidence) of the last minutes, oldest first",
    params: idParams,
    query: z.object({
      minutes: z.coerce
        .number()
        .int()
        .min(1)
        .max(1440)
        .optional()
        .describe('how far back, in minutes (60 by default, a day at most)'),
    }),
    async handler({ ctx, s, params, query }) {
      return {
        samples: await s.fleet.history(
          ctx,
          params.id,
          query.minutes === undefined ? {} : { minutes: query.minutes },
        ),
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/fleet/devices/:id/feedback-uploads',
    access: 'viewer',
    tag: 'fleet',
    mutation: {
      exempt: 'device-upload-url',
      why: 'presigns short-lived upload URLs and stores nothing; an uploaded frame joins training data only through review_feedback, an approved tool',
    },
    summary:
      'Presigned PUT URLs a registered device uploads uncertain frames to (a device token with scope device:<id>, or an admin); one image each, JPEG by default',
    params: idParams,
    body: z.object({
      count: z.number().int().min(1).max(10).describe('how many upload URLs (1 to 10)'),
      contentType: z
        .enum(['image/jpeg', 'image/png', 'image/webp'])
        .optional()
        .describe('type of the images (default image/jpeg)'),
    }),
    response: z.object({
      uploads: z.array(z.object({ url: z.string(), key: z.string(), expiresAt: z.number() })),
    }),
    async handler({ ctx, s, params, body }) {
      // who may ask, and whether the device is registered in this project, is checked by the service
      return { uploads: await s.feedback.issueDeviceUploadUrls(ctx, params.id, body) };
    },
  }),
  route({
    method: 'get',
    path: '/api/rollouts',
    access: 'viewer',
    tag: 'fleet',
    summary: 'Rollouts, newest first, with progress per device',
    query: z.object({ state: z.string().max(32).optional(), ...page }),
    async handler({ ctx, s, query }) {
      return { rollouts: await s.rollouts.list(ctx, query as never) };
    },
  }),
  route({
    method: 'get',
    path: '/api/rollouts/:id',
    access: 'viewer',
    tag: 'fleet',
    summary: 'One rollout with the state of every device',
    params: idParams,
    async handler({ ctx, s, params }) {
      return s.rollouts.status(ctx, params.id);
    },
  }),
];
