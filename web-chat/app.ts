import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { LocalStorage, localStorageRouter } from '../services/infra/storage/index.js';
import type { Router } from 'express';
import type { Logger } from '../core/log.js';
import type { PlatformMetrics } from '../core/metrics.js';
import type { Cache } from '../services/infra/cache/port.js';
import type { HealthSource } from './health.routes.js';
import type { Storage } from '../services/infra/storage/index.js';
import { apiRouter } from './api.js';
import { Authenticator } from './auth.js';
import { healthRoutes } from './health.routes.js';
import { errorHandler } from './http-errors.js';
import { DEFAULT_RATE_LIMITS, rateLimiter, type RateLimits } from './rate-limit.js';
import { ROUTES, type SignInConfig } from './routes/index.js';
import { slackRouter, type SlackOptions } from './slack/index.js';
import type { WebServices } from './web-services.js';

/** Options of the web layer: limits, chat-bot settings. */
export interface WebOptions {
  rateLimits?: Partial<RateLimits>;
  slack?: Partial<SlackOptions>;
  /** How old an open socket's credential check may get before it is checked again (default 60 s; tests shorten it). */
  socketReauthMs?: number;
}

/** What `createApp` keeps in `app.locals.web` for the socket server. */
export interface WebLocals {
  services: WebServices;
  authenticator: Authenticator;
}

const require = createRequire(import.meta.url);
const FIREBASE_BUILDS = ['firebase-app-compat.js', 'firebase-auth-compat.js'] as const;
const PUBLIC_DIR = path.join(import.meta.dirname, 'public');

function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) !== name.split('/').pop()) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`package folder of ${name} not found`);
    dir = up;
  }
  return dir;
}

/** Origins the Firebase Web SDK calls (connect-src) and frames (frame-src) from the sign-in page. */
function firebaseOrigins(signIn: SignInConfig): { connect: string[]; frame: string[] } {
  if (signIn.mode !== 'firebase') return { connect: [], frame: [] };
  const { authDomain, emulatorUrl } = signIn.firebase;
  return {
    connect: [
      'https://identitytoolkit.googleapis.com',
      'https://securetoken.googleapis.com',
      ...(emulatorUrl === null ? [] : [emulatorUrl]),
    ],
    frame: [`https://${authDomain}`],
  };
}

/** What the web app is built from: its services and the parts of the platform it mounts (given by app/). */
export interface WebAppDeps {
  services: WebServices;
  log: Logger;
  metrics: PlatformMetrics;
  /** Rate-limit counters. */
  cache: Cache;
  storage: Storage;
  health: HealthSource;
  authMode: 'local' | 'firebase';
  signIn: SignInConfig;
  /** Origins of presigned storage URLs the CSP must allow. */
  storageOrigins: string[];
  /** The chat-bot endpoints' settings (signing secret, webhook, user map). */
  slack: Omit<SlackOptions, 'services' | 'log'>;
  /** Routers of other front ends mounted on this server, by path (e.g. `/mcp`). */
  mounts?: Array<[path: string, router: Router]>;
}

/** Builds the express app of the platform server: health, signed storage URLs, metrics, API, bot and UI. */
export function createApp(deps: WebAppDeps, opts: WebOptions = {}): Express {
  const app = express();
  const { services, log, metrics, storage, cache, authMode, signIn } = deps;
  const authenticator = new Authenticator({
    accounts: services.accounts,
    log,
    firebase: authMode === 'firebase',
  });
  const firebase = firebaseOrigins(signIn);
  const locals: WebLocals = { services, authenticator };
  app.locals.web = locals;
  const limits = { ...DEFAULT_RATE_LIMITS, ...opts.rateLimits };

  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:', 'blob:', ...deps.storageOrigins],
          connectSrc: ["'self'", ...firebase.connect],
          frameSrc: ["'self'", ...firebase.frame],
          fontSrc: ["'self'", 'data:'],
          objectSrc: ["'none'"],
          baseUri: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
        },
      },
    }),
  );
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method, route }, seconds);
    });
    next();
  });
  app.use(healthRoutes(deps.health));
  if (storage instanceof LocalStorage) app.use(localStorageRouter(storage, { log }));
  for (const [mountPath, router] of deps.mounts ?? []) app.use(mountPath, router);

  app.use(
    '/integrations',
    rateLimiter(cache, 'bot', limits.windowMs, limits.api, 'chat-bot requests'),
    slackRouter({ services, log, ...deps.slack, ...opts.slack }),
  );

  app.use('/api/auth/login', rateLimiter(cache, 'login', limits.windowMs, limits.login, 'sign-in attempts'));
  app.use(['/api', '/metrics'], rateLimiter(cache, 'api', limits.windowMs, limits.api, 'requests'));
  // dataset upload chunks arrive as raw bytes (the upload service bounds each chunk)
  app.use('/api/uploads', express.raw({ type: 'application/octet-stream', limit: '5mb' }));
  // an image to try a model on arrives as its bytes (the tryout service bounds the size again)
  app.use(
    '/api/models/:ref/try',
    express.raw({ type: ['image/*', 'application/octet-stream'], limit: '10mb' }),
  );
  app.use('/api', express.json({ limit: '1mb' }));
  app.use(apiRouter({ routes: ROUTES, services, authenticator, metrics, storage, log, authMode, signIn }));

  app.use('/vendor/bootstrap', express.static(path.join(packageDir('bootstrap'), 'dist'), { maxAge: '1d' }));
  app.use('/vendor/chart.js', express.static(path.join(packageDir('chart.js'), 'dist'), { maxAge: '1d' }));
  // only the two compat (UMD) builds the sign-in page loads in Firebase mode, not the whole package
  const firebaseDir = path.dirname(require.resolve('firebase/package.json'));
  for (const file of FIREBASE_BUILDS)
    app.get(`/vendor/firebase/${file}`, (_req, res) =>
      res.sendFile(path.join(firebaseDir, file), { maxAge: '1d' }),
    );
  app.use(express.static(PUBLIC_DIR, { index: 'index.html' }));
  app.use(errorHandler(log));
  return app;
}
