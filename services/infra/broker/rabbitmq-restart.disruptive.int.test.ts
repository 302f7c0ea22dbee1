import { connect, Offset, type Client } from 'rabbitmq-stream-js-client';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SERVICE_URLS,
  skipWithoutService,
  startRabbitApp,
  stopRabbitApp,
  uniqueSuffix,
} from '../../../test/services.fixtures.js';
import { silentLogger } from '../../../core/log.js';
import { metrics } from './broker.contract.js';
import type { Envelope } from '../../../protocol/envelope.js';
import { STREAMS } from './port.js';
import { RabbitBroker } from './rabbitmq.js';

// Needs RabbitMQ with the stream plugin (TEST_RABBITMQ_STREAM_URL) and `rabbitmqctl` on this machine:
// the test stops RabbitMQ's app, so it runs after every other test file (see vitest.config.ts).
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');
const url = SERVICE_URLS.rabbitmq;

async function waitFor(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rawClient(): Promise<Client> {
  const u = new URL(url);
  return connect({
    hostname: u.hostname,
    port: Number(u.port || 5552),
    username: decodeURIComponent(u.username || 'guest'),
    password: decodeURIComponent(u.password || 'guest'),
    vhost: '/',
  });
}

describe.skipIf(skip)(`${RabbitBroker.name} across a RabbitMQ restart`, () => {
  const prefix = `test-${uniqueSuffix()}-`;

  afterAll(async () => {
    const raw = await rawClient();
    for (const s of Object.values(STREAMS))
      await raw.deleteStream({ stream: `${prefix}${s}` }).catch(() => undefined);
    await raw.close();
  });

  it(
    'reconnects after RabbitMQ restarts and delivers every message exactly once',
    { timeout: 120_000 },
    async () => {
      const producer = new RabbitBroker({
        url,
        log: silentLogger(),
        streamPrefix: prefix,
        publishTimeoutMs: 60_000,
      });
      const consumer = new RabbitBroker({ url, log: silentLogger(), streamPrefix: prefix });
      const total = 300;
      const seen = new Map<string, number>();
      const epochs: number[] = [];
      const sub = await consumer.subscribe(
        STREAMS.telemetry,
        { name: 'restart-writer', from: 'first', singleActive: true },
        (env: Envelope) => {
          seen.set(env.id, (seen.get(env.id) ?? 0) + 1);
          epochs.push((env.payload as { epoch: number }).epoch);
        },
      );
      const published: Array<Promise<void>> = [];
      let stopped = false;
      try {
        for (let i = 0; i < total; i++) {
          published.push(producer.publish(STREAMS.telemetry, metrics(i)));
          if (i === 100) {
            await waitFor(() => epochs.length > 50, 'messages before the restart', 20_000);
            await stopRabbitApp();
            stopped = true;
          } else if (i === 120) {
            // Messages 101..120 were published while the server was down; they wait and go out after the reconnect.
            await startRabbitApp();
            stopped = false;
          } else await new Promise((r) => setTimeout(r, 2));
        }
        await Promise.all(published);
        await waitFor(() => epochs.length >= total, `all ${total} messages (got ${epochs.length})`, 30_000);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        if (stopped) await startRabbitApp().catch(() => undefined);
        await sub.close();
        await consumer.close();
        await producer.close();
      }
      expect(epochs).toEqual([...Array(total).keys()]);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);

      // The stream itself holds each message once: de-duplication dropped what was resent after the reconnect.
      const fresh = await rawClient();
      let stored = 0;
      await fresh.declareConsumer(
        { stream: `${prefix}${STREAMS.telemetry}`, offset: Offset.first() },
        () => void stored++,
      );
      await waitFor(() => stored >= total, 'a raw read of the stream', 10_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(stored).toBe(total);
      await fresh.close().catch(() => undefined);
    },
  );
});
