import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../test/services.fixtures.js';
import { startTestServer, type TestServer } from './server.fixtures.js';

const skip = await skipWithoutService('Redis', SERVICE_URLS.redis, 'TEST_REDIS_URL');

describe.skipIf(skip)('socket.io across two instances sharing Redis', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const env = { REDIS_URL: SERVICE_URLS.redis! };
    a = await startTestServer({ env });
    b = await startTestServer({ env });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('delivers a domain event raised on one instance to a client of the other instance in the job room', async () => {
    const login = await b.login('viewer');
    const socket: Socket = connect(b.url, {
      transports: ['websocket'],
      extraHeaders: { cookie: login.cookie },
      reconnection: false,
      forceNew: true,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    const jobId = `job_${uniqueSuffix()}`;
    expect(await socket.emitWithAck('subscribe', { kind: 'job', id: jobId })).toEqual({ ok: true });
    const received = new Promise<{ type: string; job: { id: string } }>((resolve) =>
      socket.on('event', resolve),
    );
    a.platform.events.emit({
      type: 'training.finished',
      projectId: 'default',
      at: Date.now(),
      job: { id: jobId },
      status: 'succeeded',
    } as never);
    const event = await received;
    expect(event).toMatchObject({ type: 'training.finished', job: { id: jobId } });
    socket.close();
  });
});
