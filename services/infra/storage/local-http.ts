import { Router, type Request, type Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { isPlatformError, PlatformError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import type { LocalStorage } from './local.js';

const STATUS: Record<string, number> = { invalid_input: 400, forbidden: 403, not_found: 404, conflict: 409 };

/** Serves `GET /storage/*` and `PUT /storage/*` for URLs signed by `storage`; the signature is the only credential. */
export function localStorageRouter(storage: LocalStorage, opts: { log?: Logger } = {}): Router {
  const router = Router();
  const fail = (res: Response, err: unknown) => failWith(res, err, opts.log);

  router.get('/storage/*key', async (req, res) => {
    try {
      const grant = authorize(storage, req, 'get');
      const info = await storage.head(grant.key);
      if (!info)
        throw new PlatformError('not_found', `object "${grant.key}" not found in storage; check the key`);
      const body = await storage.get(grant.key);
      res.status(200);
      res.setHeader('content-type', info.contentType ?? 'application/octet-stream');
      // served from the platform's origin: a download, never sniffed or rendered as a page (uploaded HTML/SVG)
      res.setHeader('content-disposition', 'attachment');
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('content-security-policy', "default-src 'none'; sandbox");
      res.setHeader('content-length', String(info.size));
      if (info.sha256) res.setHeader('x-content-sha256', info.sha256);
      res.setHeader('cache-control', 'private, no-store');
      await pipeline(body, res);
    } catch (err) {
      fail(res, err);
    }
  });

  router.put('/storage/*key', async (req, res) => {
    try {
      const grant = authorize(storage, req, 'put');
      const limit = Math.min(grant.maxBytes ?? storage.maxUploadBytes, storage.maxUploadBytes);
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > limit) {
        res.setHeader('connection', 'close');
        res.status(413).json({
          error: {
            code: 'invalid_input',
            message: `upload of ${declared} bytes exceeds the limit of ${limit} bytes`,
          },
        });
        req.resume();
        return;
      }
      const sent = req.headers['content-type'];
      if (
        grant.contentType &&
        sent !== undefined &&
        sent.split(';')[0]!.trim().toLowerCase() !== grant.contentType.toLowerCase()
      ) {
        throw new PlatformError(
          'forbidden',
          `this storage URL accepts only Content-Type ${grant.contentType}, not ${sent.slice(0, 100)}; ask for a URL for that type`,
        );
      }
      const contentType = grant.contentType ?? sent;
      const result = await storage.put(grant.key, req, {
        ...(contentType ? { contentType } : {}),
        maxBytes: limit,
      });
      res.status(200).json(result);
    } catch (err) {
      if (isPlatformError(err, 'invalid_input') && /larger than the limit/.test(err.message)) {
        res.setHeader('connection', 'close');
        res.status(413).json({ error: err.toJSON() });
        return;
      }
      fail(res, err);
    }
  });

  return router;
}

function authorize(storage: LocalStorage, req: Request, op: 'get' | 'put') {
  const segments = (req.params as { key?: string | string[] }).key;
  const key = Array.isArray(segments) ? segments.join('/') : (segments ?? '');
  const q = req.query as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const grant = storage.verifySignedUrl({
    op: str(q.op),
    key,
    exp: str(q.exp),
    sig: str(q.sig),
    ct: str(q.ct),
    max: str(q.max),
  });
  if (grant.op !== op)
    throw new PlatformError(
      'forbidden',
      `this storage URL allows ${grant.op.toUpperCase()}, not ${op.toUpperCase()}; ask for a ${op} URL`,
    );
  return grant;
}

function failWith(res: Response, err: unknown, log: Logger | undefined): void {
  if (res.headersSent) {
    log?.warn({ err }, 'storage response aborted');
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  for (const header of [
    'content-type',
    'content-length',
    'x-content-sha256',
    'cache-control',
    'content-disposition',
    'content-security-policy',
  ])
    res.removeHeader(header);
  if (isPlatformError(err)) {
    res.status(STATUS[err.code] ?? 500).json({ error: err.toJSON() });
    return;
  }
  log?.error({ err }, 'storage request failed');
  res
    .status(500)
    .json({ error: { code: 'internal', message: 'storage request failed; see the server log' } });
}
