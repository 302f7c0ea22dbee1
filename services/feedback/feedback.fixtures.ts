import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetService } from '../datasets/dataset.service.js';
import { datasetPathPolicy } from '../datasets/roots.js';
import { jpeg, testContext, writeTree } from '../datasets/datasets.fixtures.js';
import { EventBus } from '../../core/events.js';
import { newId } from '../../core/ids.js';
import { makeEnvelope, type MessagePayload } from '../../protocol/envelope.js';
import type { Db } from '../infra/db/port.js';
import { LocalStorage } from '../infra/storage/local.js';
import { silentLogger } from '../../core/log.js';
import { ModelRegistry } from '../models/model.registry.js';
import { type ModelVersion } from '../models/model.js';
import type { FeedbackEvent } from './events.js';
import { FeedbackService } from './feedback.service.js';

/** A feedback slice over a given database: real DatasetService and ModelRegistry, local storage, a settable clock. */
export async function makeFeedbackHarness(db: Db) {
  const dir = mkdtempSync(path.join(tmpdir(), 'via-feedback-'));
  await db.migrate();
  const storage = new LocalStorage({
    root: path.join(dir, 'storage'),
    baseUrl: 'http://127.0.0.1:9',
    secret: 'feedback-test-secret-0123456789',
  });
  const clock = { now: Date.UTC(2026, 10, 20, 12, 0, 0) };
  const now = () => clock.now;
  const paths = datasetPathPolicy({
    dataDir: path.join(dir, 'storage'),
    importRoots: [path.join(dir, 'src')],
  });
  const datasets = new DatasetService({
    db,
    storage,
    events: new EventBus(),
    log: silentLogger(),
    now,
    paths,
  });
  const registry = new ModelRegistry({ db, events: new EventBus(), log: silentLogger(), now });
  const bus = new EventBus<FeedbackEvent>();
  const events: FeedbackEvent[] = [];
  bus.on((e) => events.push(e));
  const sut = new FeedbackService({
    db,
    storage,
    datasets,
    models: registry,
    events: bus,
    log: silentLogger(),
    now,
  });
  const ctx = testContext('default', 'operator');

  await writeTree(path.join(dir, 'src'), {
    'data.yaml': 'names: [helmet, head]\n',
    'images/a.jpg': await jpeg(64, 48, 1),
    'labels/a.txt': '0 0.5 0.5 0.4 0.4\n',
    'images/b.jpg': await jpeg(64, 48, 2),
    'labels/b.txt': '1 0.3 0.3 0.2 0.2\n',
  });
  await datasets.import(ctx, { name: 'helmets', source: { kind: 'folder', path: path.join(dir, 'src') } });
  const jobId = newId('job');
  const put = await storage.put(`jobs/${jobId}/1/model.onnx`, Buffer.from('onnx'));
  const { version: model } = await registry.registerFromArtifact({
    projectId: 'default',
    name: 'helmets-builtin',
    job: {
      id: jobId,
      attempt: 1,
      runnerId: 'gpu-1',
      config: { backend: 'builtin', model: 'tiny', epochs: 3, imgsz: 320, batch: 8 },
      dataset: { name: 'helmets', version: 1 },
    },
    artifact: {
      jobId,
      attempt: 1,
      runnerId: 'gpu-1',
      artifacts: [{ name: 'model.onnx', key: put.key, sha256: put.sha256, size: put.size }],
      model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet', 'head'] },
      metrics: { mAP50: 0.4 },
    },
    createdBy: 'u_operator',
  });

  /** A device uploads a frame through a signed PUT URL and announces it. */
  const deviceSends = async (
    deviceId: string,
    seed: number,
    over: Partial<MessagePayload<'feedback.sample'>> = {},
  ) => {
    const [grant] = await sut.issueUploadUrls(deviceId, 1);
    const u = new URL(grant!.url);
    const key = u.pathname
      .replace(/^\/storage\//, '')
      .split('/')
      .map(decodeURIComponent)
      .join('/');
    const q = (name: string) => u.searchParams.get(name) ?? undefined;
    const grantOf = storage.verifySignedUrl({
      op: q('op'),
      key,
      exp: q('exp'),
      sig: q('sig'),
      ct: q('ct'),
      max: q('max'),
    });
    const stored = await storage.put(key, await jpeg(80, 60, seed), {
      contentType: grantOf.contentType ?? 'image/jpeg',
    });
    const envelope = makeEnvelope(
      'feedback.sample',
      {
        deviceId,
        modelVersionId: model.id,
        imageKey: key,
        sha256: stored.sha256,
        width: 80,
        height: 60,
        reason: 'low_confidence',
        predictions: [{ box: [8, 6, 40, 30], classId: 0, className: 'helmet', score: 0.41 }],
        capturedAt: clock.now - 1000,
        ...over,
      },
      { source: deviceId },
    );
    await sut.handleTelemetry(envelope);
    return envelope;
  };

  const heartbeat = (deviceId: string, tags: string[], conf: number) =>
    sut.handleTelemetry(
      makeEnvelope(
        'device.heartbeat',
        {
          deviceId,
          name: deviceId,
          tags,
          hardware: 'Jetson',
          runtime: {},
          provider: 'cpu',
          modelVersionId: model.id,
          state: 'serving',
          fps: 10,
          latencyP50Ms: 10,
          latencyP95Ms: 20,
          meanTopConfidence: conf,
          cpuPercent: 10,
          memoryMb: 100,
          temperatureC: null,
        },
        { source: deviceId },
      ),
    );

  return {
    dir,
    db,
    storage,
    clock,
    datasets,
    registry,
    model: model as ModelVersion,
    sut,
    events,
    ctx,
    deviceSends,
    heartbeat,
    cleanup: async () => {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
