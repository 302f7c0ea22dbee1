import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHttpServer, type RunningServer } from '../app/http.js';
import { loadConfig } from '../app/config.js';
import { systemPrincipal, type CallContext } from '../core/context.js';
import { makeEnvelope, type Envelope, type MessagePayload } from '../protocol/envelope.js';
import { MemoryBroker } from './infra/broker/memory.js';
import { STREAMS } from './infra/broker/port.js';
import { EventBus } from '../core/events.js';
import type { TrainingEvent } from './training/events.js';
import { TrainingService } from './training/training.service.js';
import { type TrainingDatasets } from './training/model.js';
import { silentLogger } from '../core/log.js';
import { createPlatform, type Platform } from '../app/platform.js';

const ctx: CallContext = {
  user: systemPrincipal(),
  projectId: 'default',
  requestId: 'public-url-test',
  log: silentLogger(),
};
const env = (dir: string, extra: Record<string, string> = {}) =>
  loadConfig(
    {
      DATA_DIR: dir,
      LOG_LEVEL: 'silent',
      DEMO_DATASET: 'false',
      DEMO_PROFILE: 'tiny',
      EMBEDDED_GPU_RUNNER: 'false',
      SIMULATED_DEVICES: '0',
      ...extra,
    },
    dir,
  );

const datasets: TrainingDatasets = {
  async trainingManifest(_ctx, _ref, presign) {
    return {
      name: 'helmets-demo',
      version: 1,
      classNames: ['helmet'],
      files: [
        {
          path: 'images/train/a.txt',
          url: await presign('datasets/d1/a.txt'),
          sha256: 'a'.repeat(64),
          size: 5,
        },
      ],
    };
  },
};

// One database and storage folder, as a `serve` and a `visioninapp mcp` pointed at the same DATABASE_URL share them.
describe('storage URLs signed by a process that serves no HTTP', () => {
  let dir: string;
  let serve: Platform;
  let http: RunningServer;
  let mcp: Platform;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'via-public-url-'));
    serve = await createPlatform(env(dir, { HOST: '127.0.0.1', PORT: '0' }), silentLogger());
    await serve.prepare();
    http = await startHttpServer(serve);
    // the MCP process keeps its own default base (PORT 8080), where nothing listens
    mcp = await createPlatform(env(dir), silentLogger());
    await mcp.prepare();
  }, 60_000);

  afterAll(async () => {
    await http?.close();
    await mcp?.close();
    await serve?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the MCP process signs storage URLs with the URL the serve advertised, and they work there', async () => {
    expect(mcp.publicUrl).toBe('http://127.0.0.1:8080');
    expect(http.url).not.toBe(mcp.publicUrl);
    await mcp.infra.storage.put('datasets/d1/a.txt', Buffer.from('hello'));
    const url = await mcp.infra.storage.presignGet('datasets/d1/a.txt', 60);
    expect(url.startsWith(`${http.url}/storage/datasets/d1/a.txt?`)).toBe(true);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello');
  });

  it('a training job created in the MCP process is dispatched with the advertised URL', async () => {
    const broker = new MemoryBroker();
    const control: Envelope[] = [];
    await broker.subscribe(STREAMS.control, { from: 'first' }, (m) => {
      control.push(m);
    });
    const training = new TrainingService({
      db: mcp.infra.db,
      broker,
      storage: mcp.infra.storage,
      events: new EventBus<TrainingEvent>(),
      log: silentLogger(),
      datasets,
      models: mcp.models,
      heartbeatTimeoutMs: 60_000,
      maxAttempts: 1,
    });
    try {
      const job = await training.start(ctx, {
        dataset: 'helmets-demo',
        config: { backend: 'builtin', model: 'tiny', epochs: 1, imgsz: 64, batch: 8 },
      });
      await training.handleTelemetry(
        makeEnvelope(
          'runner.heartbeat',
          { runnerId: 'gpu-1', backends: ['builtin'], device: { kind: 'cpu', name: 'test' } },
          { source: 'gpu-1' },
        ),
      );
      await vi.waitFor(() => expect(control.filter((m) => m.type === 'train.start')).toHaveLength(1), {
        timeout: 10_000,
      });
      const start = control.find((m) => m.type === 'train.start') as Envelope<MessagePayload<'train.start'>>;
      expect(start.payload.jobId).toBe(job.id);
      const urls = [
        ...start.payload.dataset.files.map((f) => f.url),
        ...Object.values(start.payload.uploads).map((u) => u.url),
      ];
      expect(urls.length).toBeGreaterThan(2);
      for (const u of urls) expect(u.startsWith(`${http.url}/storage/`)).toBe(true);
    } finally {
      await broker.close();
    }
  });

  it('an explicit PUBLIC_URL still wins over the advertised one', async () => {
    const other = await createPlatform(
      env(dir, { PUBLIC_URL: 'https://vision.example.test/' }),
      silentLogger(),
    );
    try {
      expect(await other.infra.storage.presignGet('a/b.txt', 60)).toMatch(
        /^https:\/\/vision\.example\.test\/storage\/a\/b\.txt\?/,
      );
      expect(await other.publicUrls.advertised()).toBe(http.url);
    } finally {
      await other.close();
    }
  });
});
