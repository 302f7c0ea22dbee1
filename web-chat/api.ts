import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import { describeZodError, PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { PlatformMetrics } from '../core/metrics.js';
import type { Storage } from '../services/infra/storage/port.js';
import { callContext, checkCsrf, requireRole, type Authenticator, type RequestAuth } from './auth.js';
import { sendError } from './http-errors.js';
import type { RouteDef, SignInConfig } from './routes/index.js';
import type { WebServices } from './web-services.js';

/** What the API router needs. */
export interface ApiDeps {
  routes: RouteDef[];
  services: WebServices;
  authenticator: Authenticator;
  metrics: PlatformMetrics;
  storage: Storage;
  log: Logger;
  authMode: 'local' | 'firebase';
  /** What GET /api/auth/config tells the sign-in page. */
  signIn: SignInConfig;
}

function parsePart<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (schema === undefined) return (value ?? {}) as T;
  const result = schema.safeParse(value ?? {});
  if (!result.success)
    throw new PlatformError('invalid_input', `invalid ${where}: ${describeZodError(result.error)}`);
  return result.data;
}

/** Mounts every route of the table: authenticate, CSRF, role, validate, run the thin handler, map errors. */
export function apiRouter(deps: ApiDeps): Router {
  const router = Router();
  const presign = (key: string) => deps.storage.presignGet(key, 600);
  for (const r of deps.routes) {
    router[r.method](r.path, async (req: Request, res: Response) => {
      try {
        let auth: RequestAuth | undefined;
        if (r.access !== 'public') {
          auth = await deps.authenticator.authenticate(req.headers);
          checkCsrf(req, auth);
          requireRole(auth, r.access);
        }
        const params = parsePart(r.params, req.params, 'path parameters');
        const query = parsePart(r.query, req.query, 'query');
        const body = r.body === undefined ? undefined : parsePart(r.body, req.body, 'request body');
        const ctx = auth ? callContext(auth, deps.log, req.get('x-request-id')) : (undefined as never);
        const out = await r.handler({
          params,
          query,
          body,
          ctx,
          auth,
          req,
          res,
          s: deps.services,
          metrics: deps.metrics,
          presign,
          authMode: deps.authMode,
          signIn: deps.signIn,
          routes: deps.routes,
        });
        if (!r.raw) res.status(r.status ?? 200).json(out);
      } catch (err) {
        sendError(res, err, deps.log);
      }
    });
  }
  router.use('/api', (req, res) => {
    sendError(
      res,
      new PlatformError(
        'not_found',
        `no API route ${req.method} ${req.originalUrl.split('?')[0]}; see /api/openapi.json`,
      ),
    );
  });
  return router;
}
