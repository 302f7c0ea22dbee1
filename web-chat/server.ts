import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import express from 'express';
import type { Platform } from '../app/platform.js';
import { createApp, type WebLocals, type WebOptions } from './app.js';
import { attachSockets, type SocketServer } from './sockets.js';

/** A running HTTP server with a graceful close. */
export interface RunningServer {
  url: string;
  server: http.Server;
  sockets: SocketServer;
  close(): Promise<void>;
}

/** Starts the platform's HTTP server (and a separate metrics server when METRICS_PORT is set). */
export async function startHttpServer(platform: Platform, opts: { port?: number; host?: string; web?: WebOptions } = {}): Promise<RunningServer> {
  const { config, log } = platform;
  const app = createApp(platform, opts.web);
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
