import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type Router } from 'express';
import type { Registry } from 'prom-client';
import { isPlatformError, PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Detection } from '../vision/index.js';

/** The answer of `POST /infer`: detections in original pixels, and which model made them. */
export interface InferResult {
  modelVersionId: string;
  provider: string;
  latencyMs: number;
  width: number;
  height: number;
  detections: Detection[];
}

/** What the device API needs from the runner. */
export interface DeviceApiHandlers {
  infer(image: Buffer, conf: number | undefined): Promise<InferResult>;
  health(): { ok: boolean } & Record<string, unknown>;
  registry: Registry;
  /** Extra routes (the HTTP push frame source). */
  routes?: Router;
  /** The device API key: every route but `GET /healthz` needs it as `X-Device-Key: <key>` or `Authorization: Bearer <key>`. */
  apiKey: string;
  /** Largest request body (an encoded image) accepted, in bytes (default 25 MiB). */
  maxBodyBytes?: number;
  log: Logger;
}

/** Header that carries the device API key (`Authorization: Bearer <key>` works too, e.g. for a Prometheus scraper). */
export const DEVICE_KEY_HEADER = 'x-device-key';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Middleware refusing requests without the device API key (compared in constant time). */
export function requireDeviceKey(apiKey: string): express.RequestHandler {
  if (typeof apiKey !== 'string' || apiKey.length < 16)
    throw new PlatformError('invalid_input', 'the device API key must be at least 16 characters');
  const want = digest(apiKey);
  return (req, res, next) => {
    const header = req.headers[DEVICE_KEY_HEADER];
    const auth = req.headers.authorization;
    const given =
      typeof header === 'string'
        ? header
        : typeof auth === 'string' && /^Bearer /i.test(auth)
          ? auth.slice(7).trim()
          : undefined;
    if (given !== undefined && timingSafeEqual(digest(given), want)) {
      next();
      return;
    }
    res.setHeader('www-authenticate', 'Bearer realm="edge device API"');
    res.status(401).json({
      error: {
        code: 'unauthenticated',
        message: `the device API needs its key in the ${DEVICE_KEY_HEADER} header (or Authorization: Bearer); it is in <data-dir>/device-api-key on the device`,
      },
    });
  };
}

const STATUS: Record<string, number> = {
  invalid_input: 400,
  not_found: 404,
  unavailable: 503,
  rate_limited: 429,
};

/**
 * Builds the device's local HTTP API: `POST /infer`, `GET /healthz`, `GET /metrics` (+ `POST /frames`
 * for the push source). Only `GET /healthz` answers without the device API key.
 */
export function deviceApp(h: DeviceApiHandlers): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    const body = h.health();
    res.status(body.ok ? 200 : 503).json(body);
  });
  // before any body is read: an unauthenticated upload is refused without buffering it
  app.use(requireDeviceKey(h.apiKey));
  const maxBodyBytes = h.maxBodyBytes ?? 25 * 1024 * 1024;
  // a declared length over the limit is refused before reading; routes also cap what they buffer
  app.use((req, res, next) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) {
      res.setHeader('connection', 'close');
      res.status(413).json({
        error: {
          code: 'invalid_input',
          message: `the request body is over the limit of ${maxBodyBytes} bytes; send a smaller image`,
        },
      });
      req.resume();
      return;
    }
    next();
  });
  app.post('/infer', express.raw({ type: () => true, limit: maxBodyBytes }), async (req, res) => {
    try {
      const body = req.body as unknown;
      if (!Buffer.isBuffer(body) || body.length === 0)
        throw new PlatformError(
          'invalid_input',
          'POST /infer needs the image bytes as the request body (JPEG, PNG or WebP)',
        );
      const q = req.query.conf;
      const conf = typeof q === 'string' && q !== '' ? Number(q) : undefined;
      if (conf !== undefined && !(conf >= 0 && conf <= 1))
        throw new PlatformError('invalid_input', `conf must be a number between 0 and 1, got "${String(q)}"`);
      res.json(await h.infer(body, conf));
    } catch (err) {
      sendError(res, err, h.log);
    }
  });
  app.get('/metrics', async (_req, res) => {
    try {
      res.setHeader('content-type', h.registry.contentType);
      res.send(await h.registry.metrics());
    } catch (err) {
      sendError(res, err, h.log);
    }
  });
  if (h.routes) app.use(h.routes);
  app.use(bodyErrors(h.log));
  return app;
}

// express.raw reports an oversized body as a 413 error; answer it in the API's error shape
function bodyErrors(log: Logger): express.ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    const e = err as { status?: number; type?: string; limit?: number };
    if (e?.type === 'entity.too.large') {
      res.setHeader('connection', 'close');
      res.status(413).json({
        error: {
          code: 'invalid_input',
          message: `the request body is over the limit of ${e.limit} bytes; send a smaller image`,
        },
      });
      return;
    }
    if (res.headersSent) return next(err);
    sendError(res, err, log);
  };
}

function sendError(res: express.Response, err: unknown, log: Logger): void {
  if (isPlatformError(err)) {
    res.status(STATUS[err.code] ?? 500).json({ error: { code: err.code, message: err.message } });
    return;
  }
  log.error({ err }, 'device API request failed');
  res
    .status(500)
    .json({ error: { code: 'internal', message: 'the request failed; see the edge runner log' } });
}

/** Listens on `host:port` (port 0 = any free port); resolves with the URL and a close function. */
export async function listen(
  app: express.Express,
  port: number,
  host: string,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new PlatformError(
          'unavailable',
          `device API cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? err.message}); choose another --http-port`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The device API key: the configured one (at least 16 characters), or one made once and kept
 * owner-only in `<dataDir>/device-api-key` for local integrations to read.
 */
export async function loadDeviceApiKey(
  dataDir: string,
  configured: string | undefined,
  log: Logger,
): Promise<string> {
  const file = path.join(dataDir, 'device-api-key');
  if (configured !== undefined) {
    if (configured.length < 16)
      throw new PlatformError('invalid_input', 'the device API key must be at least 16 characters');
    await writeFile(file, `${configured}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    return configured;
  }
  const stored = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (stored.length >= 16) return stored;
  const created = randomBytes(32).toString('base64url');
  await writeFile(file, `${created}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  log.info({ file }, 'created a device API key; local clients send it as the X-Device-Key header');
  return created;
}
