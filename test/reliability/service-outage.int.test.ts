import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { loadConfig } from '../../app/config.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform, type Platform } from '../../app/platform.js';
import { startHttpServer, type RunningServer } from '../../app/http.js';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../services.fixtures.js';

const skipMysql = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');
const skipRedis = await skipWithoutService('Redis', SERVICE_URLS.redis, 'TEST_REDIS_URL');

/** A TCP proxy the test can cut (every connection dropped, new ones refused) and restore on the same port. */
class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 45_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Ready {
  status: string;
  checks: Array<{ port: string; adapter: string; ok: boolean; detail?: string }>;
}

describe.skipIf(skipMysql || skipRedis)(
  'MySQL and Redis unavailable for a while (TCP proxy cut and restored)',
  () => {
    let db: { url: string; drop: () => Promise<void> };
    let dataDir: string;
    let mysqlProxy: CuttableProxy;
    let redisProxy: CuttableProxy;
    let platform: Platform;
    let http: RunningServer;
    let session: Record<string, string>;

    const readyz = async (): Promise<{ status: number; body: Ready }> => {
      const res = await fetch(`${http.url}/readyz`);
      return { status: res.status, body: (await res.json()) as Ready };
    };

    beforeAll(async () => {
      db = await createTempMysqlDatabase();
      const mysqlUrl = new URL(db.url);
      mysqlProxy = new CuttableProxy({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306) });
      const redisUrl = new URL(SERVICE_URLS.redis);
      redisProxy = new CuttableProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
      await mysqlProxy.open();
      await redisProxy.open();
      mysqlUrl.hostname = '127.0.0.1';
      mysqlUrl.port = String(mysqlProxy.port);
      dataDir = mkdtempSync(path.join(tmpdir(), 'vrel-outage-'));
      const config = loadConfig(
        {
          DATA_DIR: dataDir,
          LOG_LEVEL: 'silent',
          DATABASE_URL: mysqlUrl.toString(),
          REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
          EMBEDDED_GPU_RUNNER: 'false',
          SIMULATED_DEVICES: '0',
          DEMO_DATASET: 'false',
        },
        dataDir,
      );
      platform = await createPlatform(config, silentLogger());
      await platform.start();
      http = await startHttpServer(platform, { port: 0, host: '127.0.0.1' });
      await platform.accounts.createUser({
        email: 'op@outage.test',
        name: 'Op',
        password: 'correct horse battery',
        role: 'operator',
        projectId: DEFAULT_PROJECT_ID,
      });
      const login = await fetch(`${http.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'op@outage.test', password: 'correct horse battery' }),
      });
      expect(login.status).toBe(200);
      const { csrfToken } = (await login.json()) as { csrfToken: string };
      session = {
        cookie: login.headers
          .getSetCookie()
          .map((c) => c.split(';')[0]!)
          .join('; '),
        'x-csrf-token': csrfToken,
      };
    }, 90_000);

    afterAll(async () => {
      // Closing the Redis clients at shutdown leaves ioredis "Connection is closed." rejections nobody awaits
      // (reported to the team); they are recorded here so they do not fail the outage test itself.
      const atShutdown: unknown[] = [];
      const onShutdown = (err: unknown) => void atShutdown.push(err);
      process.on('unhandledRejection', onShutdown);
      await http?.close();
      await platform?.close();
      await new Promise((r) => setTimeout(r, 200));
      process.off('unhandledRejection', onShutdown);
      for (const err of atShutdown) expect(String(err)).toMatch(/Connection is closed/);
      await mysqlProxy?.cut();
      await redisProxy?.cut();
      await db?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('fails requests clearly, turns /readyz red naming the adapter, and recovers when the service returns', async () => {
      const unhandled: string[] = [];
      const onUnhandled = (err: unknown) =>
        void unhandled.push(`${phase}: ${String(err)} ${(err as Error).stack ?? ''}`.slice(0, 1500));
      let phase = 'start';
      process.on('unhandledRejection', onUnhandled);
      expect((await readyz()).status).toBe(200);
      expect((await fetch(`${http.url}/api/datasets`, { headers: session })).status).toBe(200);

      await mysqlProxy.cut();
      const red = await eventually('readyz red for db', async () => {
        const r = await readyz();
        return r.status === 503 && r.body.checks.some((c) => c.port === 'db' && !c.ok) ? r : undefined;
      });
      const dbCheck = red.body.checks.find((c) => c.port === 'db')!;
      expect(dbCheck.adapter).toBe('mysql');
      expect(dbCheck.detail ?? '').not.toBe('');
      const failed = await fetch(`${http.url}/api/datasets`, {
        headers: session,
        signal: AbortSignal.timeout(30_000),
      });
      // a clear, structured error a person can act on: 503 unavailable, naming what is down and where to look, no stack
      expect(failed.status).toBe(503);
      const failedBody = (await failed.json()) as { error?: { code?: string; message?: string } };
      expect(failedBody.error?.code).toBe('unavailable');
      expect(failedBody.error?.message ?? '').toMatch(/database or cache\b.*not reachable/);
      expect(failedBody.error?.message ?? '').toMatch(/try again.*\/readyz/);
      expect(failedBody.error?.message ?? '').not.toMatch(/\n\s+at |ECONNREFUSED|127\.0\.0\.1|root@/);
      console.info(
        `while MySQL is down, GET /api/datasets answers ${failed.status} ${JSON.stringify(failedBody)}`,
      );

      await mysqlProxy.open();
      await eventually('readyz green after MySQL returns', async () =>
        (await readyz()).status === 200 ? true : undefined,
      );
      await eventually('datasets answer again', async () =>
        (await fetch(`${http.url}/api/datasets`, { headers: session })).status === 200 ? true : undefined,
      );

      phase = 'redis cut';
      await redisProxy.cut();
      const redisRed = await eventually('readyz red for cache', async () => {
        const r = await readyz();
        return r.status === 503 &&
          r.body.checks.some((c) => c.port === 'cache' && c.adapter === 'redis' && !c.ok)
          ? r
          : undefined;
      });
      expect(redisRed.body.checks.filter((c) => !c.ok).map((c) => c.port)).toEqual(['cache']);
      // requests (signed-in and sign-in alike) fail with a message that names Redis and the variable to check
      for (const [label, init] of [
        ['GET /api/datasets', { headers: session }],
        [
          'POST /api/auth/login',
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email: 'op@outage.test', password: 'correct horse battery' }),
          },
        ],
      ] as Array<[string, RequestInit]>) {
        const res = await fetch(`${http.url}${label.split(' ')[1]!}`, {
          ...init,
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json()) as { error?: { code?: string; message?: string } };
        expect({ label, status: res.status, code: body.error?.code }).toEqual({
          label,
          status: 503,
          code: 'unavailable',
        });
        expect(body.error?.message ?? '').toMatch(
          /^Redis at \S+ is unavailable: .*check that it runs and that REDIS_URL points at it/,
        );
        expect(body.error?.message ?? '').not.toMatch(/\n\s+at /);
      }
      phase = 'redis restored';
      await redisProxy.open();
      await eventually('readyz green after Redis returns', async () =>
        (await readyz()).status === 200 ? true : undefined,
      );
      expect((await fetch(`${http.url}/api/datasets`, { headers: session })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
      process.off('unhandledRejection', onUnhandled);
      expect(unhandled, 'no unhandled rejection while the services were away or coming back').toEqual([]);
    }, 120_000);
  },
);
