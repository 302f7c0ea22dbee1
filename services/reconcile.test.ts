import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../app/config.js';
import { systemPrincipal, type CallContext } from '../core/context.js';
import { EventBus } from '../core/events.js';
import { makeEnvelope, type Envelope, type MessagePayload } from '../protocol/envelope.js';
import { MemoryBroker } from './infra/broker/memory.js';
import { STREAMS } from './infra/broker/port.js';
import { SqliteDb } from './infra/db/sqlite.js';
import { LocalStorage } from './infra/storage/local.js';
import { silentLogger } from '../core/log.js';
import { ModelRegistry } from './models/model.registry.js';
import { createPlatform } from '../app/platform.js';
import { InFlightReconciler } from './reconcile.js';
import type { TrainingEvent } from './training/events.js';
import { TrainingService } from './training/training.service.js';
import { type TrainingDatasets } from './training/model.js';

const ctx: CallContext = {
  user: systemPrincipal(),
  projectId: 'p1',
  requestId: 'reconcile-test',
  log: silentLogger(),
};
const datasets: TrainingDatasets = {
  async trainingManifest(_ctx, _ref, presign) {
    return {
      name: 'd',
      version: 1,
      classNames: ['helmet'],
      files: [{ path: 'images/train/a.jpg', url: await presign('a.jpg'), sha256: 'a'.repeat(64), size: 1 }],
    };
  },
};

describe(InFlightReconciler.name, () => {
  let dir: string;
  let db: SqliteDb;
  let broker: MemoryBroker;
  let control: Envelope[];

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'reconcile-'));
    db = new SqliteDb({ file: path.join(dir, 't.db') });
    await db.migrate();
    broker = new MemoryBroker();
    control = [];
    await broker.subscribe(STREAMS.control, { from: 'first' }, (m) => void control.push(m));
  });
  afterEach(async () => {
    await broker.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a retention gap, asks the runners and devices of work in flight (only those) for their status, once per burst', async () => {
    const training = new TrainingService({
      db,
      broker,
      storage: new LocalStorage({
        root: path.join(dir, 's'),
        baseUrl: 'http://127.0.0.1:1',
        secret: 'x'.repeat(32),
      }),
      events: new EventBus<TrainingEvent>(),
      log: silentLogger(),
      datasets,
      models: new ModelRegistry({ db, events: new EventBus(), log: silentLogger() }),
      heartbeatTimeoutMs: 60_000,
      maxAttempts: 1,
    });
    const config = { backend: 'builtin' as const, model: 'tiny', epochs: 1, imgsz: 64, batch: 8 };
    const assigned = await training.start(ctx, { dataset: 'd', config });
    await training.handleTelemetry(
      makeEnvelope(
        'runner.heartbeat',
        { runnerId: 'gpu-1', backends: ['builtin'], device: { kind: 'cpu', name: 't' } },
        { source: 'gpu-1' },
      ),
    );
    await training.start(ctx, { dataset: 'd', config, name: 'still-queued' });
    const deployment = (id: string, state: 'sent' | 'healthy') => ({
      id,
      rollout_id: 'ro-1',
      project_id: 'p1',
      device_id: `dev-${id}`,
      device_name: id,
      wave: 0,
      position: 0,
      state,
      device_state: null,
      message: null,
      previous_model_version_id: null,
      baseline_confidence: null,
      latency_p95_ms: null,
      conf_sum: 0,
      conf_count: 0,
      latency_sum: 0,
      latency_count: 0,
      waiting_since: null,
      sent_at: 1,
      healthy_at: null,
      verified_at: null,
      finished_at: null,
      updated_at: 1,
    });
    await db.kysely
      .insertInto('rollout_deployments')
      .values([deployment('d1', 'sent'), deployment('d2', 'healthy')])
      .execute();

    const sut = new InFlightReconciler({ db, broker, log: silentLogger(), debounceMs: 20 });
    const gap = { stream: STREAMS.telemetry, consumer: 'training-telemetry', expected: 5, resumedAt: 40 };
    sut.onGap(gap);
    sut.onGap({ ...gap, consumer: 'fleet-telemetry' });
    await vi.waitFor(() => expect(control.filter((m) => m.type === 'status.request')).toHaveLength(1));
    await new Promise((r) => setTimeout(r, 100));
    const requests = control.filter((m) => m.type === 'status.request');
    expect(requests).toHaveLength(1);
    const payload = requests[0]!.payload as MessagePayload<'status.request'>;
    expect(payload.jobs).toEqual([{ jobId: assigned.id, attempt: 1, runnerId: 'gpu-1' }]);
    expect(payload.deployments).toEqual([{ deploymentId: 'd1', rolloutId: 'ro-1', deviceId: 'dev-d1' }]);
    expect(payload.reason).toMatch(
      /training-telemetry on vision\.telemetry skipped offsets 5\.\.39; fleet-telemetry/,
    );
    await sut.stop();
  });

  it('sends nothing when no work is in flight', async () => {
    const sut = new InFlightReconciler({ db, broker, log: silentLogger() });
    expect(await sut.requestStatus('test')).toEqual({ jobs: 0, deployments: 0 });
    expect(control).toEqual([]);
  });
});

describe('platform wiring of retention gaps', () => {
  it('counts each gap in visioninapp_broker_retention_gaps_total', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'reconcile-platform-'));
    const platform = await createPlatform(
      loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent' }, dir),
      silentLogger(),
    );
    try {
      expect(platform.infra.broker).toBeInstanceOf(MemoryBroker);
      (platform.infra.broker as MemoryBroker).reportGap({
        stream: STREAMS.telemetry,
        consumer: 'training',
        expected: 1,
        resumedAt: 9,
      });
      expect(
        await platform.metrics.registry.getSingleMetricAsString('visioninapp_broker_retention_gaps_total'),
      ).toContain('visioninapp_broker_retention_gaps_total{stream="vision.telemetry",consumer="training"} 1');
    } finally {
      await platform.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
