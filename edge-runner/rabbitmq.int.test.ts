import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'rabbitmq-stream-js-client';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../test/services.fixtures.js';
import { STREAMS } from '../services/infra/broker/index.js';
import { RabbitBroker } from '../services/infra/broker/rabbitmq.js';
import { silentLogger } from '../core/log.js';
import { runEdgeRunnerCommand } from './command.js';
import { buildTestDetector } from './models.fixtures.js';
import { EmbeddedPlatform } from './platform.fixtures.js';

// Needs RabbitMQ with the stream plugin: TEST_RABBITMQ_STREAM_URL (default rabbitmq-stream://guest:guest@127.0.0.1:5552/).
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');

describe.skipIf(skip)('visioninapp edge-runner against RabbitMQ streams', () => {
  let root: string;
  let platform: EmbeddedPlatform;
  const prefix = `test-edge-${uniqueSuffix()}-`;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'edge-rabbit-'));
    platform = new EmbeddedPlatform(
      path.join(root, 'storage'),
      new RabbitBroker({ url: SERVICE_URLS.rabbitmq!, log: silentLogger(), streamPrefix: prefix }),
    );
    await platform.start();
  });
  afterAll(async () => {
    await platform?.close();
    await rm(root, { recursive: true, force: true });
    if (skip) return;
    const u = new URL(SERVICE_URLS.rabbitmq!);
    const raw = await connect({
      hostname: u.hostname,
      port: Number(u.port || 5552),
      username: decodeURIComponent(u.username || 'guest'),
      password: decodeURIComponent(u.password || 'guest'),
      vhost: '/',
    });
    for (const s of Object.values(STREAMS))
      await raw.deleteStream({ stream: `${prefix}${s}` }).catch(() => undefined);
    await raw.close();
  });

  it('runs the command: heartbeats, applies a deploy to healthy, and stops on abort', async () => {
    const frames = path.join(root, 'frames');
    await mkdir(frames);
    await writeFile(
      path.join(frames, 'a.jpg'),
      await sharp({ create: { width: 80, height: 60, channels: 3, background: '#3366aa' } })
        .jpeg()
        .toBuffer(),
    );
    const model = await buildTestDetector(
      { detections: [{ cx: 32, cy: 32, w: 16, h: 16, cls: 0, score: 0.8 }] },
      root,
    );
    const stop = new AbortController();
    const running = runEdgeRunnerCommand(
      {
        deviceId: 'rabbit-jetson',
        tags: 'line-3,rabbit',
        brokerUrl: SERVICE_URLS.rabbitmq!,
        streamPrefix: prefix,
        source: `folder:${frames}`,
        fps: 20,
        dataDir: path.join(root, 'device'),
        httpPort: 0,
        httpHost: '127.0.0.1',
        heartbeatSeconds: 1,
      },
      { log: silentLogger(), signal: stop.signal },
    );
    const first = await platform.waitFor('device.heartbeat', (p) => p.deviceId === 'rabbit-jetson', 20_000);
    expect(first.tags).toEqual(['line-3', 'rabbit']);
    await platform.deploy(
      'rabbit-jetson',
      'dep-r1',
      await platform.publishModel(model.bytes, { versionId: 'mv-r1' }),
    );
    const healthy = await platform.waitFor(
      'device.health',
      (p) => p.deviceId === 'rabbit-jetson' && (p.state === 'healthy' || p.state === 'failed'),
      20_000,
    );
    expect(healthy.state, healthy.message).toBe('healthy');
    await platform.waitFor(
      'device.heartbeat',
      (p) => p.deviceId === 'rabbit-jetson' && p.modelVersionId === 'mv-r1' && p.fps > 0,
      20_000,
    );
    stop.abort();
    await running;
  }, 60_000);
});
