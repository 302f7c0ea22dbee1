import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** Real services the integration tests use, with the variable that points at each and its local default. */
export const SERVICE_URLS = {
  mysql: process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/test',
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  rabbitmq: process.env.TEST_RABBITMQ_STREAM_URL ?? 'rabbitmq-stream://guest:guest@127.0.0.1:5552/',
  elasticsearch: process.env.ELASTICSEARCH_URL,
} as const;

/** A free TCP port on 127.0.0.1 (for servers a test starts as separate processes). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Returns true when the tests that need `name` must be skipped (printing why). With
 * REQUIRE_SERVICES=1 (set by .ci/run) a missing service throws instead, so nothing skips silently in CI.
 */
export async function skipWithoutService(
  name: string,
  url: string | undefined,
  envVar: string,
): Promise<boolean> {
  let reason: string | undefined;
  if (url === undefined) reason = `${envVar} is not set`;
  else {
    const u = new URL(url);
    const port = Number(u.port || defaultPort(u.protocol));
    if (!(await canConnect(u.hostname, port)))
      reason = `${name} is not reachable at ${u.hostname}:${port} (${envVar})`;
  }
  if (reason === undefined) return false;
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${reason}`);
  console.warn(`[skip] ${name} tests skipped: ${reason}`);
  return true;
}

function defaultPort(protocol: string): number {
  switch (protocol) {
    case 'mysql:':
      return 3306;
    case 'redis:':
      return 6379;
    case 'rabbitmq-stream:':
      return 5552;
    case 'https:':
      return 443;
    default:
      return 80;
  }
}

/** A short random suffix so concurrent test files never share databases, keys or streams. */
export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** Creates a fresh MySQL database for one test file; returns its URL and a drop function. */
export async function createTempMysqlDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const { createConnection } = await import('mysql2/promise');
  const base = new URL(SERVICE_URLS.mysql);
  const name = `vtest_${uniqueSuffix()}`;
  const admin = await createConnection({ uri: base.toString() });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const conn = await createConnection({ uri: base.toString() });
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}

/**
 * RabbitMQ's app stopped and started again (`rabbitmqctl stop_app` / `start_app`); start waits until
 * the stream port accepts connections. Tests that use these stop a server every other test file
 * shares, so they must be named `*.disruptive.int.test.ts`: vitest runs those one at a time after
 * every other file (see vitest.config.ts). Always start the app again in a `finally`.
 */
export async function stopRabbitApp(): Promise<void> {
  await rabbitmqctl('stop_app');
}

export async function startRabbitApp(): Promise<void> {
  await rabbitmqctl('start_app');
  const u = new URL(SERVICE_URLS.rabbitmq);
  const port = Number(u.port || 5552);
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(u.hostname, port))) {
    if (Date.now() > deadline)
      throw new Error(`RabbitMQ's stream port ${u.hostname}:${port} did not reopen within 60 s of start_app`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Stops RabbitMQ's app, runs `during`, and starts the app again even when `during` throws. */
export async function withRabbitStopped<T>(during: () => Promise<T>): Promise<T> {
  await stopRabbitApp();
  try {
    return await during();
  } finally {
    await startRabbitApp();
  }
}

async function rabbitmqctl(command: 'stop_app' | 'start_app'): Promise<void> {
  const { execFile } = await import('node:child_process');
  await new Promise<void>((resolve, reject) =>
    execFile('rabbitmqctl', [command], (err) => (err ? reject(err) : resolve())),
  );
}
