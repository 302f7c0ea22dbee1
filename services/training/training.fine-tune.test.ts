import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallContext, Role } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import { EventBus } from '../../core/events.js';
import {
  makeEnvelope,
  type Envelope,
  type MessagePayload,
  type MessageType,
} from '../../protocol/envelope.js';
import { MemoryBroker } from '../infra/broker/memory.js';
import { STREAMS } from '../infra/broker/port.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { LocalStorage } from '../infra/storage/local.js';
import { silentLogger } from '../../core/log.js';
import type { ModelEvent } from '../models/events.js';
import { ModelRegistry } from '../models/model.registry.js';
import type { TrainingEvent } from './events.js';
import { CHECKPOINT_ARTIFACT, JOB_ARTIFACTS, type TrainingDatasets } from './model.js';
import { TrainingService } from './training.service.js';

const config = { backend: 'builtin' as const, model: 'builtin-n', epochs: 3, imgsz: 320, batch: 8 };

function ctxFor(role: Role): CallContext {
  return {
    user: { userId: `u_${role}`, email: `${role}@x.test`, name: role, role, kind: 'user' },
    projectId: 'p1',
    requestId: `r-${role}`,
    threadId: 't1',
    log: silentLogger(),
  };
}

const datasets: TrainingDatasets = {
  async trainingManifest(_ctx, ref, presign) {
    const [name, v] = ref.split('@');
    if (name !== 'helmets') throw new PlatformError('not_found', `dataset "${name}" not found`);
    return {
      name,
      version: v === undefined || v === 'latest' ? 2 : Number(v),
      classNames: ['helmet', 'head'],
      files: [
        { path: 'images/train/a.jpg', url: await presign('images/aa.jpg'), sha256: 'a'.repeat(64), size: 10 },
      ],
    };
  },
};

const tele = <T extends MessageType>(type: T, payload: MessagePayload<T>): Envelope =>
  makeEnvelope(type, payload, { source: 'gpu-test' });

describe(`${TrainingService.name} fine-tuning`, () => {
  let dir: string;
  let db: SqliteDb;
  let broker: MemoryBroker;
  let storage: LocalStorage;
  let models: ModelRegistry;
  let control: Envelope[];
  let sut: TrainingService;
  const op = ctxFor('operator');

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'finetune-'));
    db = new SqliteDb({ file: path.join(dir, 't.db') });
    await db.migrate();
    broker = new MemoryBroker();
    storage = new LocalStorage({
      root: path.join(dir, 'storage'),
      baseUrl: 'http://127.0.0.1:8080',
      secret: 'x'.repeat(32),
    });
    control = [];
    await broker.subscribe(STREAMS.control, { from: 'first' }, (m) => {
      control.push(m);
    });
    models = new ModelRegistry({ db, events: new EventBus<ModelEvent>(), log: silentLogger() });
    sut = new TrainingService({
      db,
      broker,
      storage,
      events: new EventBus<TrainingEvent>(),
      log: silentLogger(),
      datasets,
      models,
      heartbeatTimeoutMs: 60_000,
      maxAttempts: 1,
    });
    await sut.handleTelemetry(
      tele('runner.heartbeat', {
        runnerId: 'gpu-1',
        backends: ['builtin', 'ultralytics'],
        device: { kind: 'cpu', name: 't' },
      }),
    );
  });
  afterEach(async () => {
    await broker.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const starts = () =>
    control.filter((m) => m.type === 'train.start').map((m) => m.payload as MessagePayload<'train.start'>);

  /** Plays the runner: uploads model.onnx and best.pt where train.start said, reports them, and returns the version. */
  async function finish(jobId: string, withCheckpoint = true) {
    const start = starts().find((s) => s.jobId === jobId)!;
    const onnx = await storage.put(start.uploads['model.onnx']!.key, Buffer.from(`onnx of ${jobId}`));
    const ckpt = await storage.put(
      start.uploads[CHECKPOINT_ARTIFACT]!.key,
      Buffer.from(`weights of ${jobId}`),
    );
    const artifacts = [
      { name: 'model.onnx', key: onnx.key, sha256: onnx.sha256, size: onnx.size },
      ...(withCheckpoint
        ? [{ name: CHECKPOINT_ARTIFACT, key: ckpt.key, sha256: ckpt.sha256, size: ckpt.size }]
        : []),
    ];
    await sut.handleTelemetry(
      tele('artifact.ready', {
        jobId,
        attempt: 1,
        runnerId: 'gpu-1',
        artifacts,
        model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet', 'head'] },
        metrics: { mAP50: 0.5 },
      }),
    );
    await sut.handleTelemetry(
      tele('runner.heartbeat', {
        runnerId: 'gpu-1',
        backends: ['builtin', 'ultralytics'],
        device: { kind: 'cpu', name: 't' },
      }),
    );
    const job = await sut.get(op, jobId);
    expect(job.status).toBe('succeeded');
    return models.get(op, job.modelVersionId!);
  }

  it('keeps the checkpoint as a version artifact and sends it, by sha256, to a fine-tuning started from name@production', async () => {
    expect(JOB_ARTIFACTS).toContain(CHECKPOINT_ARTIFACT);
    const first = await sut.start(op, { dataset: 'helmets', config, name: 'helmets' });
    expect(starts()[0]!.init).toBeUndefined();
    const v1 = await finish(first.id);
    const ckpt = v1.artifacts.find((a) => a.name === CHECKPOINT_ARTIFACT)!;
    expect(ckpt.sha256).toMatch(/^[0-9a-f]{64}$/);
    await models.promote(ctxFor('approver'), v1.ref, 'production');

    const retrain = await sut.start(op, { dataset: 'helmets@2', config, from: 'helmets@production' });
    expect(retrain.name).toBe('helmets');
    expect(retrain.config.from).toEqual({ versionId: v1.id, ref: 'helmets@1' });
    const init = starts().find((s) => s.jobId === retrain.id)!.init!;
    expect(init).toMatchObject({
      ref: 'helmets@1',
      sha256: ckpt.sha256,
      size: ckpt.size,
      classNames: ['helmet', 'head'],
    });
    // the signed URL serves exactly the stored checkpoint
    const res = await fetchLocal(init.url);
    expect(res.toString()).toBe(`weights of ${first.id}`);

    const v2 = await finish(retrain.id);
    expect(v2.ref).toBe('helmets@2');
    expect(v2.lineage.config).toMatchObject({ from: { versionId: v1.id, ref: 'helmets@1' } });
  });

  it('refuses a starting point without a checkpoint, from another backend, or unknown, before creating a job', async () => {
    const old = await sut.start(op, { dataset: 'helmets', config, name: 'legacy' });
    await finish(old.id, false);
    await expect(sut.start(op, { dataset: 'helmets', config, from: 'legacy@1' })).rejects.toThrow(
      /legacy@1 has no checkpoint \(best\.pt\)/,
    );
    const other = await sut.start(op, { dataset: 'helmets', config, name: 'modern' });
    await finish(other.id);
    await expect(
      sut.start(op, {
        dataset: 'helmets',
        config: { ...config, backend: 'ultralytics', model: 'yolo11n' },
        from: 'modern@1',
      }),
    ).rejects.toThrow(/trained with the builtin backend; fine-tune it with backend builtin/);
    await expect(sut.start(op, { dataset: 'helmets', config, from: 'nothing@1' })).rejects.toMatchObject({
      code: 'not_found',
    });
    expect((await sut.list(op)).map((j) => j.name).sort()).toEqual(['legacy', 'modern']);
  });

  /** Reads what a LocalStorage signed GET URL grants, through the storage's own check (no HTTP server here). */
  async function fetchLocal(url: string): Promise<Buffer> {
    const u = new URL(url);
    const key = decodeURIComponent(u.pathname.replace(/^\/storage\//, ''));
    const q = (k: string) => u.searchParams.get(k) ?? undefined;
    const grant = storage.verifySignedUrl({ op: q('op'), key, exp: q('exp'), sig: q('sig') });
    expect(grant.op).toBe('get');
    return storage.getBuffer(grant.key);
  }
});
