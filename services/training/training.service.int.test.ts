import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../../test/services.fixtures.js';
import type { CallContext } from '../../core/context.js';
import { EventBus } from '../../core/events.js';
import {
  makeEnvelope,
  type Envelope,
  type MessagePayload,
  type MessageType,
} from '../../protocol/envelope.js';
import { MemoryBroker } from '../infra/broker/memory.js';
import { MysqlDb } from '../infra/db/mysql.js';
import { LocalStorage } from '../infra/storage/local.js';
import { silentLogger } from '../../core/log.js';
import { ModelRegistry } from '../models/model.registry.js';
import { TrainingService } from './training.service.js';
import { JOB_ARTIFACTS, type TrainingDatasets } from './model.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

const op: CallContext = {
  user: { userId: 'u_op', email: 'op@x.test', name: 'op', role: 'operator', kind: 'user' },
  projectId: 'p1',
  requestId: 'r',
  log: silentLogger(),
};
const MODEL_SHA = createHash('sha256').update('m').digest('hex');
const config = { backend: 'builtin' as const, model: 'tiny', epochs: 2, imgsz: 320, batch: 8 };
const datasets: TrainingDatasets = {
  async trainingManifest(_ctx, _ref, presign) {
    return {
      name: 'helmets-demo',
      version: 1,
      classNames: ['helmet'],
      files: [
        { path: 'images/train/a.jpg', url: await presign('images/a.jpg'), sha256: 'a'.repeat(64), size: 1 },
      ],
    };
  },
};
const tele = <T extends MessageType>(type: T, payload: MessagePayload<T>): Envelope =>
  makeEnvelope(type, payload, { source: 'gpu' });
const heartbeat = (runnerId: string) =>
  tele('runner.heartbeat', { runnerId, backends: ['builtin'], device: { kind: 'cpu', name: 'cpu' } });
const ready = (jobId: string, runnerId: string) =>
  tele('artifact.ready', {
    jobId,
    attempt: 1,
    runnerId,
    artifacts: JOB_ARTIFACTS.map((name) => ({
      name,
      key: `jobs/${jobId}/1/${name}`,
      sha256: name === 'model.onnx' ? MODEL_SHA : 'c'.repeat(64),
      size: 1,
    })),
    model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet'] },
    metrics: { mAP50: 0.4 },
  });

describe.skipIf(skip)('TrainingService and ModelRegistry on MySQL, two platform instances', () => {
  let temp: { url: string; drop: () => Promise<void> };
  let dir: string;
  let dbs: MysqlDb[];
  let broker: MemoryBroker;
  let services: TrainingService[];
  let registry: ModelRegistry;
  let storage: LocalStorage;

  beforeAll(async () => {
    temp = await createTempMysqlDatabase();
    dir = mkdtempSync(path.join(tmpdir(), 'train-int-'));
    dbs = [new MysqlDb({ url: temp.url }), new MysqlDb({ url: temp.url })];
    await dbs[0]!.migrate();
    broker = new MemoryBroker();
    storage = new LocalStorage({ root: dir, baseUrl: 'http://127.0.0.1:8080', secret: 'y'.repeat(32) });
    services = dbs.map((db) => {
      const models = new ModelRegistry({ db, events: new EventBus(), log: silentLogger() });
      return new TrainingService({
        db,
        broker,
        storage,
        events: new EventBus(),
        log: silentLogger(),
        datasets,
        models,
        heartbeatTimeoutMs: 60_000,
        maxAttempts: 1,
      });
    });
    registry = new ModelRegistry({ db: dbs[0]!, events: new EventBus(), log: silentLogger() });
  });
  afterAll(async () => {
    await broker?.close();
    for (const db of dbs ?? []) await db.close();
    await temp?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('never gives a job two runners or a runner two jobs when two instances dispatch at once', async () => {
    const [a, b] = services as [TrainingService, TrainingService];
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await a.start(op, { dataset: 'helmets-demo', config }));
    await Promise.all([
      a.handleTelemetry(heartbeat('gpu-1')),
      b.handleTelemetry(heartbeat('gpu-2')),
      a.handleTelemetry(heartbeat('gpu-3')),
      b.dispatch(),
      a.dispatch(),
    ]);
    const all = await a.list(op, { limit: 10 });
    const assigned = all.filter((j) => j.status === 'assigned');
    expect(assigned).toHaveLength(3);
    expect(new Set(assigned.map((j) => j.runnerId)).size).toBe(3);
    const runners = await a.runners();
    expect(runners.map((r) => r.busyJobId).sort()).toEqual(assigned.map((j) => j.id).sort());
  });

  it('stores each epoch once, registers each finished job as the next version, and frees its runner', async () => {
    const [a, b] = services as [TrainingService, TrainingService];
    const running = (await a.list(op, { status: 'assigned' })).slice(0, 2);
    for (const job of running) {
      const m = tele('train.metrics', {
        jobId: job.id,
        attempt: 1,
        epoch: 1,
        epochs: 2,
        kind: 'epoch',
        metrics: { mAP50: 0.2 },
      });
      await Promise.all([a.handleTelemetry(m), b.handleTelemetry(m)]);
      expect(await a.metrics(op, job.id)).toHaveLength(1);
    }
    for (const job of running) await storage.put(`jobs/${job.id}/1/model.onnx`, Buffer.from('m'));
    await Promise.all(
      running.map((job, i) => (i % 2 === 0 ? a : b).handleTelemetry(ready(job.id, job.runnerId!))),
    );
    const versions = await registry.list(op, { name: 'helmets-demo-builtin' });
    expect(versions.map((v) => v.version).sort()).toEqual([1, 2]);
    for (const job of running) expect((await a.get(op, job.id)).status).toBe('succeeded');
    expect((await a.list(op, { status: 'assigned' })).length).toBe(2);
    expect(await a.list(op, { status: 'queued' })).toEqual([]);
  });

  it('numbers concurrent registrations of one name without gaps or duplicates, and promotes on MySQL', async () => {
    const registries = dbs.map(
      (db) => new ModelRegistry({ db, events: new EventBus(), log: silentLogger() }),
    );
    const payload = (jobId: string) => ready(jobId, 'gpu-9').payload as MessagePayload<'artifact.ready'>;
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        registries[i % 2]!.registerFromArtifact({
          projectId: 'p1',
          name: 'race',
          job: {
            id: `job_race_${i}`,
            attempt: 1,
            runnerId: 'gpu-9',
            config,
            dataset: { name: 'helmets-demo', version: 1 },
          },
          artifact: payload(`job_race_${i}`),
          createdBy: 'u_op',
        }),
      ),
    );
    expect((await registry.list(op, { name: 'race' })).map((v) => v.version).sort()).toEqual([
      1, 2, 3, 4, 5, 6,
    ]);
    const approver = { ...op, user: { ...op.user, userId: 'u_appr', role: 'approver' as const } };
    await registry.promote(approver, 'race@3', 'production');
    expect((await registry.get(op, 'race@production')).version).toBe(3);
    expect((await registry.get(op, 'race@candidate')).stages).toContain('candidate');
  });
});
