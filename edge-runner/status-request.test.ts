import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeEnvelope,
  MemoryBroker,
  STREAMS,
  type Envelope,
  type MessagePayload,
} from '../services/infra/broker/index.js';
import { silentLogger } from '../core/log.js';
import { freePort } from '../test/services.fixtures.js';
import { EdgeRunner } from './edge-runner.js';
import { FolderSource } from './sources/index.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'edge-status-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('EdgeRunner status.request', () => {
  it('reports again the outcome of a deployment it handled, and nothing for other devices', async () => {
    const broker = new MemoryBroker();
    const health: Array<MessagePayload<'device.health'>> = [];
    await broker.subscribe(STREAMS.telemetry, { from: 'first' }, (env: Envelope) => {
      if (env.type === 'device.health') health.push(env.payload as MessagePayload<'device.health'>);
    });
    const frames = path.join(root, 'frames');
    await mkdir(frames, { recursive: true });
    const runner = new EdgeRunner({
      deviceId: 'dev-1',
      tags: ['line-3'],
      broker,
      dataDir: path.join(root, 'dev-1'),
      source: new FolderSource({ dir: frames, maxFps: 5 }),
      log: silentLogger(),
      heartbeatMs: 200,
      hardware: 'test-board',
    });
    try {
      await runner.start();
      const model = {
        versionId: 'mv1',
        name: 'helmets',
        version: 1,
        // nothing listens there: the deploy fails and its outcome is recorded
        url: `http://127.0.0.1:${await freePort()}/storage/models/mv1/model.onnx?sig=x`,
        sha256: 'a'.repeat(64),
        size: 10,
        layout: 'ultralytics' as const,
        inputSize: 64,
        classNames: ['helmet'],
      };
      await broker.publish(
        STREAMS.control,
        makeEnvelope(
          'deploy.apply',
          { deploymentId: 'dep-1', rolloutId: 'ro-1', deviceId: 'dev-1', model },
          { source: 'test', target: 'dev-1' },
        ),
      );
      await until(
        () => health.some((h) => h.deploymentId === 'dep-1' && h.state === 'failed'),
        'the failed deploy',
      );
      const before = health.length;
      await broker.publish(
        STREAMS.control,
        makeEnvelope(
          'status.request',
          {
            reason: 'retention gap',
            jobs: [],
            deployments: [
              { deploymentId: 'dep-1', rolloutId: 'ro-1', deviceId: 'dev-1' },
              { deploymentId: 'dep-9', rolloutId: 'ro-1', deviceId: 'dev-9' },
            ],
          },
          { source: 'test' },
        ),
      );
      await until(() => health.length > before, 'the repeated outcome');
      expect(health.slice(before)).toEqual([
        expect.objectContaining({
          deviceId: 'dev-1',
          deploymentId: 'dep-1',
          rolloutId: 'ro-1',
          state: 'failed',
          message: expect.stringMatching(/^already handled: /),
        }),
      ]);
      await new Promise((r) => setTimeout(r, 200));
      expect(health.filter((h) => h.deploymentId === 'dep-9')).toEqual([]);
    } finally {
      await runner.stop();
      await broker.close();
    }
  }, 30_000);
});
