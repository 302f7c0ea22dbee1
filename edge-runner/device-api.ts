import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Router } from 'express';
import type { Registry } from 'prom-client';
import { isPlatformError, PlatformError } from '../services/errors.js';
import type { Logger } from '../services/log.js';
import type { Detection } from '../vision/index.js';

/** What the device API needs from the runner. */
export interface DeviceApiHandlers {
  infer(image: Buffer, conf: number | undefined): Promise<{ modelVersionId: string; provider: string; latencyMs: number; width: number; height: number; detections: Detection[] }>;
  health(): { ok: boolean } & Record<string, unknown>;
  registry: Registry;
  /** Extra routes (the HTTP push frame source). */
  routes?: Router;
  log: Logger;
}

const STATUS: Record<string, number> = { invalid_input: 400, not_found: 404, unavailable: 503, rate_limited: 429 };

/** Builds the device's local HTTP API: `POST /infer`, `GET /healthz`, `GET /metrics` (+ `POST /frames` for the push source). */
export function deviceApp(h: DeviceApiHandlers): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.post('/infer', express.raw({ type: () => true, limit: '25mb' }), async (req, res) => {
    try {
      const body = req.body as unknown;
      if (!Buffer.isBuffer(body) || body.length === 0) throw new PlatformError('invalid_input', 'POST /infer needs the image bytes as the request body (JPEG, PNG or WebP)');
      const q = req.query.conf;
      const conf = typeof q === 'string' && q !== '' ? Number(q) : undefined;
      if (conf !== undefined && !(conf >= 0 && conf <= 1)) throw new PlatformError('invalid_input', `conf must be a number between 0 and 1, got "${String(q)}"`);
      res.json(await h.infer(body, conf));
    } catch (err) {
      sendError(res, err, h.log);
    }
  });
  app.get('/healthz', (_req, res) => {
    const body = h.health();
    res.status(body.ok ? 200 : 503).json(body);
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
  return app;
}

function sendError(res: express.Response, err: unknown, log: Logger): void {
  if (isPlatformError(err)) {
    res.status(STATUS[err.code] ?? 500).json({ error: { code: err.code, message: err.message } });
    return;
  }
  log.error({ err }, 'device API request failed');
  res.status(500).json({ error: { code: 'internal', message: 'the request failed; see the edge runner log' } });
}

/** Listens on `host:port` (port 0 = any free port); resolves with the URL and a close function. */
export async function listen(app: express.Express, port: number, host: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new PlatformError('unavailable', `device API cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? err.message}); choose another --http-port`)),
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
