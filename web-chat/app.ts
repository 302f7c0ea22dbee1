import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { LocalStorage, localStorageRouter } from '../services/infra/storage/index.js';
import { mcpRouter } from '../mcp-server/index.js';
import type { Platform } from '../app/platform.js';
import { apiRouter } from './api.js';
import { Authenticator } from './auth.js';
import { healthRoutes } from './health.routes.js';
import { errorHandler } from './http-errors.js';
import { DEFAULT_RATE_LIMITS, rateLimiter, type RateLimits } from './rate-limit.js';
import { ROUTES, type SignInConfig } from './routes.js';
import { slackRouter, type SlackOptions } from './slack/index.js';
import { webServicesOf, type WebServices } from './web-services.js';

/** Options of the web layer: services not (yet) on the platform, limits, chat-bot settings. */
export interface WebOptions {
  services?: Partial<WebServices>;
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

/** The sign-in page's settings: in Firebase mode the Web SDK configuration (all public values) from FIREBASE_*. */
function signInConfig(platform: Platform): SignInConfig {
  const { FIREBASE_PROJECT_ID: projectId, FIREBASE_API_KEY: apiKey, FIREBASE_AUTH_DOMAIN: authDomain, FIREBASE_AUTH_EMULATOR_HOST: emulator } = platform.config;
  if (platform.infra.identity.kind !== 'firebase' || projectId === undefined) return { mode: 'local' };
  return {
    mode: 'firebase',
    firebase: { apiKey: apiKey ?? null, authDomain: authDomain ?? `${projectId}.firebaseapp.com`, projectId, emulatorUrl: emulator === undefined ? null : `http://${emulator}` },
  };
}

/** Origins the Firebase Web SDK calls (connect-src) and frames (frame-src) from the sign-in page. */
function firebaseOrigins(signIn: SignInConfig): { connect: string[]; frame: string[] } {
  if (signIn.mode !== 'firebase') return { connect: [], frame: [] };
  const { authDomain, emulatorUrl } = signIn.firebase;
  return {
    connect: ['https://identitytoolkit.googleapis.com', 'https://securetoken.googleapis.com', ...(emulatorUrl === null ? [] : [emulatorUrl])],
    frame: [`https://${authDomain}`],
  };
}

/** Origins of presigned S3 image URLs, which the CSP must allow besides 'self'. */
function storageOrigins(platform: Platform): string[] {
  const { S3_BUCKET: bucket, S3_ENDPOINT: endpoint, S3_REGION: region } = platform.config;
  if (bucket === undefined) return [];
  if (endpoint !== undefined) {
    const url = new URL(endpoint);
    return [url.origin, `${url.protocol}//${bucket}.${url.host}`];
  }
  return [`https://${bucket}.s3.${region}.amazonaws.com`, `https://s3.${region}.amazonaws.com`];
}

/** Builds the express app of the platform server: health, signed storage URLs, metrics, API, bot and UI. */
export function createApp(platform: Platform, opts: WebOptions = {}): Express {
  const app = express();
  const services = webServicesOf(platform, opts.services);
  const authMode = platform.infra.identity.kind;
  const authenticator = new Authenticator({ accounts: services.accounts, log: platform.log, firebase: authMode === 'firebase' });
  const signIn = signInConfig(platform);
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
          imgSrc: ["'self'", 'data:', 'blob:', ...storageOrigins(platform)],
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
      platform.metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      platform.metrics.httpDuration.observe({ method: req.method, route }, seconds);
    });
    next();
  });
  app.use(healthRoutes(platform));
  const storage = platform.infra.storage;
  if (storage instanceof LocalStorage) app.use(localStorageRouter(storage, { log: platform.log }));
  app.use('/mcp', mcpRouter(platform));

  app.use(
    '/integrations',
    rateLimiter(platform.infra.cache, 'bot', limits.windowMs, limits.api, 'chat-bot requests'),
    slackRouter({
      services,
      log: platform.log,
      signingSecret: platform.config.SLACK_SIGNING_SECRET,
      webhookUrl: platform.config.SLACK_WEBHOOK_URL,
      ...(platform.config.SLACK_USER_MAP ? { userMap: platform.config.SLACK_USER_MAP } : {}),
      ...(platform.config.MATTERMOST_COMMAND_TOKEN ? { mattermostToken: platform.config.MATTERMOST_COMMAND_TOKEN } : {}),
      ...opts.slack,
    }),
  );

  app.use('/api/auth/login', rateLimiter(platform.infra.cache, 'login', limits.windowMs, limits.login, 'sign-in attempts'));
  app.use(['/api', '/metrics'], rateLimiter(platform.infra.cache, 'api', limits.windowMs, limits.api, 'requests'));
  app.use('/api', express.json({ limit: '1mb' }));
  app.use(apiRouter({ routes: ROUTES, services, authenticator, metrics: platform.metrics, storage, log: platform.log, authMode, signIn }));

  app.use('/vendor/bootstrap', express.static(path.join(packageDir('bootstrap'), 'dist'), { maxAge: '1d' }));
  app.use('/vendor/chart.js', express.static(path.join(packageDir('chart.js'), 'dist'), { maxAge: '1d' }));
  // only the two compat (UMD) builds the sign-in page loads in Firebase mode, not the whole package
  const firebaseDir = path.dirname(require.resolve('firebase/package.json'));
  for (const file of FIREBASE_BUILDS) app.get(`/vendor/firebase/${file}`, (_req, res) => res.sendFile(path.join(firebaseDir, file), { maxAge: '1d' }));
  app.use(express.static(PUBLIC_DIR, { index: 'index.html' }));
  app.use(errorHandler(platform.log));
  return app;
}
