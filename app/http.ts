import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import express from 'express';
import type { Platform } from './platform.js';
import type { Express } from 'express';
import { createApp, type WebLocals, type WebOptions } from '../web-chat/app.js';
import type { SignInConfig } from '../web-chat/routes/index.js';
import type { WebServices } from '../web-chat/web-services.js';
import { mcpRouter } from '../mcp-server/http.js';
import { mcpServicesOf, webServicesOf } from './wiring.js';
import { attachSockets, type SocketServer } from '../web-chat/sockets.js';

/** A running HTTP server with a graceful close. */
export interface RunningServer {
  url: string;
  server: http.Server;
  sockets: SocketServer;
  close(): Promise<void>;
}

/** The sign-in page's settings: in Firebase mode the Web SDK configuration (all public values) from FIREBASE_*. */
function signInConfig(platform: Platform): SignInConfig {
  const {
    FIREBASE_PROJECT_ID: projectId,
    FIREBASE_API_KEY: apiKey,
    FIREBASE_AUTH_DOMAIN: authDomain,
    FIREBASE_AUTH_EMULATOR_HOST: emulator,
  } = platform.config;
  if (platform.infra.identity.kind !== 'firebase' || projectId === undefined) return { mode: 'local' };
  return {
    mode: 'firebase',
    firebase: {
      apiKey: apiKey ?? null,
      authDomain: authDomain ?? `${projectId}.firebaseapp.com`,
      projectId,
      emulatorUrl: emulator === undefined ? null : `http://${emulator}`,
    },
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

/** Options of the platform's HTTP app: the web layer's, and services replaced by tests. */
export interface HttpAppOptions extends WebOptions {
  services?: Partial<WebServices>;
}

/** The express app of the platform server: the web layer with `/mcp` mounted, wired from `platform` and its configuration. */
export function createHttpApp(platform: Platform, opts: HttpAppOptions = {}): Express {
  const { config } = platform;
  const { services: overrides, ...web } = opts;
  return createApp(
    {
      services: webServicesOf(platform, overrides),
      log: platform.log,
      metrics: platform.metrics,
      cache: platform.infra.cache,
      storage: platform.infra.storage,
      health: platform,
      authMode: platform.infra.identity.kind,
      signIn: signInConfig(platform),
      storageOrigins: storageOrigins(platform),
      slack: {
        signingSecret: config.SLACK_SIGNING_SECRET,
        webhookUrl: config.SLACK_WEBHOOK_URL,
        ...(config.SLACK_USER_MAP ? { userMap: config.SLACK_USER_MAP } : {}),
        ...(config.MATTERMOST_COMMAND_TOKEN ? { mattermostToken: config.MATTERMOST_COMMAND_TOKEN } : {}),
      },
      mounts: [['/mcp', mcpRouter(mcpServicesOf(platform))]],
    },
    web,
  );
}

/** Starts the platform's HTTP server (and a separate metrics server when METRICS_PORT is set). */
export async function startHttpServer(
  platform: Platform,
  opts: { port?: number; host?: string; web?: HttpAppOptions } = {},
): Promise<RunningServer> {
  const { config, log } = platform;
  const app = createHttpApp(platform, opts.web);
  const server = http.createServer(app);
  const web = app.locals.web as WebLocals;
  const sockets = await attachSockets(server, {
    services: web.services,
    authenticator: web.authenticator,
    log,
    publicUrl: platform.publicUrl,
    ...(opts.web?.socketReauthMs !== undefined ? { reauthMs: opts.web.socketReauthMs } : {}),
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : {}),
  });
  await listen(server, opts.port ?? config.PORT, opts.host ?? config.HOST);
  const { port } = server.address() as AddressInfo;
  const url = `http://${displayHost(opts.host ?? config.HOST)}:${port}`;
  // this process serves /storage: processes without HTTP (MCP, CLI) sign storage URLs with it
  await platform.publicUrls.advertise(url, { host: hostname(), pid: process.pid });

  let metricsServer: http.Server | undefined;
  if (config.METRICS_PORT !== undefined) {
    const metricsApp = express();
    metricsApp.get('/metrics', async (_req, res) => {
      res.type(platform.metrics.registry.contentType).send(await platform.metrics.registry.metrics());
    });
    metricsServer = http.createServer(metricsApp);
    await listen(metricsServer, config.METRICS_PORT, '127.0.0.1');
    log.info(`metrics on http://127.0.0.1:${config.METRICS_PORT}/metrics`);
  }

  return {
    url,
    server,
    sockets,
    async close() {
      await sockets.close();
      await Promise.all(
        [server, metricsServer]
          .filter((s): s is http.Server => s !== undefined)
          .map(
            (s) =>
              new Promise<void>((resolve) => {
                s.close(() => resolve());
                s.closeIdleConnections();
                setTimeout(() => s.closeAllConnections(), 5000).unref();
              }),
          ),
      );
    },
  };
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}
