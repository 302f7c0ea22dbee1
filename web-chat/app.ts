import express, { type Express } from 'express';
import helmet from 'helmet';
import { LocalStorage, localStorageRouter } from '../services/infra/storage/index.js';
import { mcpRouter } from '../mcp-server/index.js';
import type { Platform } from '../services/platform.js';
import { healthRoutes } from './health.routes.js';

/** Builds the express app of the platform server: health, signed storage URLs, metrics, API and UI. */
export function createApp(platform: Platform): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(helmet());
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      platform.metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      platform.metrics.httpDuration.observe({ method: req.method, route }, seconds);
    });
    next();
  });
  app.use(healthRoutes(platform));
  const storage = platform.infra.storage;
  if (storage instanceof LocalStorage) app.use(localStorageRouter(storage, { log: platform.log }));
  app.use('/mcp', mcpRouter(platform));
  return app;
}
