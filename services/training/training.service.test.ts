import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CallContext, Role } from '../../core/context.js';
import { isPlatformError, PlatformError } from '../../core/errors.js';
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
import { TrainingService } from './training.service.js';
import { trainingSearchDocs } from './training.search.js';
import { JOB_ARTIFACTS, type TrainingDatasets } from './model.js';

const TIMEOUT = 30_000;
const config = { backend: 'builtin' as const, model: 'tiny', epochs: 3, imgsz: 320, batch: 8 };

function ctxFor(role: Role, projectId = 'p1'): CallContext {
  return {
    user: { userId: `u_${role}`, email: `${role}@x.test`, name: role, role, kind: 'user' },
    projectId,
    requestId: 'r',
    threadId: 't1',
    log: silentLogger(),
  };
}

const datasets: TrainingDatasets = {
  async trainingManifest(_ctx, ref, presign) {
    const [name, v] = ref.split('@');
    if (name !== 'helmets-demo')
      throw new PlatformError('not_found', `dataset "${name}" not found; known datasets: helmets-demo`);
    const version = v === undefined || v === 'latest' ? 2 : Number(v);
    return {
      name,
      version,
      classNames: ['helmet', 'head'],
      files: [
        { path: 'images/train/a.jpg', url: await presign('images/aa.jpg'), sha256: 'a'.repeat(64), size: 10 },
        { path: 'labels/train/a.txt', url: await presign('labels/aa.txt'), sha256: 'b'.repeat(64), size: 5 },
      ],
    };
  },
};

function tele<T extends MessageType>(type: T, payload: MessagePayload<T>): Envelope {
  return makeEnvelope(type, payload, { source: 'gpu-test' });
}
const heartbeat = (
  runnerId: string,
  backends: Array<'builtin' | 'ultralytics' | 'yolox'> = ['builtin'],
  busyJobId?: string,
) =>
  tele('runner.heartbeat', {
    runnerId,
    backends,
    device: { kind: 'cpu', name: 'test' },
    ...(busyJobId === undefined ? {} : { busyJobId }),
  });

describe(TrainingService.name, () => {
  let dir: string;
  let db: SqliteDb;
  let broker: MemoryBroker;
  let storage: LocalStorage;
  let clock: number;
  let events: TrainingEvent[];
  let modelEvents: ModelEvent[];
  let control: Envelope[];
  let models: ModelRegistry;
  const op = ctxFor('operator');

  function make(opts: { maxAttempts?: number } = {}) {
    const bus = new EventBus<TrainingEvent>();
    bus.on((e) => events.push(e));
    return new TrainingService({
      db,
      broker,
      storage,
      events: bus,
      log: silentLogger(),
      datasets,
      models,
      heartbeatTimeoutMs: 60_000,
      maxAttempts: opts.maxAttempts ?? 1,
      logTailLines: 5,
      now: () => clock,
    });
  }

  const sent = (type: MessageType) => control.filter((m) => m.type === type);

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'train-'));
    db = new SqliteDb({ file: path.join(dir, 't.db') });
    await db.migrate();
    broker = new MemoryBroker();
    storage = new LocalStorage({
      root: path.join(dir, 'storage'),
      baseUrl: 'http://127.0.0.1:8080',
      secret: 'x'.repeat(32),
    });
    clock = 1_700_000_000_000;
    events = [];
    modelEvents = [];
    control = [];
    await broker.subscribe(STREAMS.control, { from: 'first' }, (m) => {
      control.push(m);
    });
    const modelBus = new EventBus<ModelEvent>();
    modelBus.on((e) => modelEvents.push(e));
    models = new ModelRegistry({ db, events: modelBus, log: silentLogger(), now: () => clock });
  });
  afterEach(async () => {
    await broker.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('queues a job until a runner with its backend appears, then sends train.start to that runner only', async () => {
    const sut = make();
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    expect(job).toMatchObject({
      status: 'queued',
      dataset: 'helmets-demo@2',
      name: 'helmets-demo-builtin',
      attempt: 1,
      requestedBy: 'u_operator',
      threadId: 't1',
    });
    await sut.handleTelemetry(heartbeat('gpu-yolo', ['ultralytics']));
    expect((await sut.get(op, job.id)).status).toBe('queued');
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const assigned = await sut.get(op, job.id);
    expect(assigned).toMatchObject({ status: 'assigned', runnerId: 'gpu-1' });
    await vi.waitFor(() => expect(sent('train.start')).toHaveLength(1));
    const start = sent('train.start')[0] as Envelope<MessagePayload<'train.start'>>;
    expect(start.target).toBe('gpu-1');
    expect(start.payload).toMatchObject({
      jobId: job.id,
      attempt: 1,
      runnerId: 'gpu-1',
      config,
      dataset: { name: 'helmets-demo', version: 2, classNames: ['helmet', 'head'] },
    });
    expect(start.payload.dataset.files[0]!.url).toMatch(
      /^http:\/\/127\.0\.0\.1:8080\/storage\/images\/aa\.jpg\?/,
    );
    expect(Object.keys(start.payload.uploads).sort()).toEqual([...JOB_ARTIFACTS].sort());
    expect(start.payload.uploads['model.onnx']!.key).toBe(`jobs/${job.id}/1/model.onnx`);
    expect(events.map((e) => e.type)).toEqual(['training.queued', 'training.assigned']);
  });

  it('a start retried under the same idempotency key (a resumed approved step) returns the first job', async () => {
    const sut = make();
    const keyed = { ...op, idempotencyKey: 'apr_train_once' };
    const a = await sut.start(keyed, { dataset: 'helmets-demo', config });
    const b = await sut.start(keyed, { dataset: 'helmets-demo', config });
    expect(b.id).toBe(a.id);
    expect((await sut.list(op)).length).toBe(1);
    const c = await sut.start({ ...op, idempotencyKey: 'apr_other' }, { dataset: 'helmets-demo', config });
    expect(c.id).not.toBe(a.id);
  });

  it('gives each runner one job at a time and each job one runner', async () => {
    const sut = make();
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const a = await sut.start(op, { dataset: 'helmets-demo', config });
    const b = await sut.start(op, { dataset: 'helmets-demo@1', config, name: 'second' });
    expect((await sut.get(op, a.id)).runnerId).toBe('gpu-1');
    expect((await sut.get(op, b.id)).status).toBe('queued');
    await sut.handleTelemetry(heartbeat('gpu-1', ['builtin'], a.id));
    expect((await sut.get(op, b.id)).status).toBe('queued');
    await sut.handleTelemetry(heartbeat('gpu-2'));
    expect((await sut.get(op, b.id)).runnerId).toBe('gpu-2');
    await vi.waitFor(() => expect(sent('train.start').map((m) => m.target)).toEqual(['gpu-1', 'gpu-2']));
  });

  it('follows status, logs and metrics of the current attempt, ignores duplicates, and registers the model', async () => {
    const sut = make();
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    const base = { jobId: job.id, attempt: 1 };
    await sut.handleTelemetry(tele('train.status', { ...base, runnerId: 'gpu-1', status: 'claimed' }));
    await sut.handleTelemetry(tele('train.status', { ...base, runnerId: 'gpu-1', status: 'running' }));
    expect((await sut.get(op, job.id)).status).toBe('running');
    const log0 = tele('train.log', { ...base, seq: 0, lines: ['l1', 'l2', 'l3'] });
    await sut.handleTelemetry(log0);
    await sut.handleTelemetry(log0);
    await sut.handleTelemetry(tele('train.log', { ...base, seq: 1, lines: ['l4', 'l5', 'l6'] }));
    for (const epoch of [1, 2, 2]) {
      await sut.handleTelemetry(
        tele('train.metrics', {
          ...base,
          epoch,
          epochs: 3,
          kind: 'epoch',
          metrics: { mAP50: epoch / 10, box_loss: 1 / epoch },
        }),
      );
    }
    await sut.handleTelemetry(
      tele('train.metrics', {
        ...base,
        epoch: 3,
        epochs: 3,
        kind: 'progress',
        batch: 2,
        batches: 10,
        metrics: { box_loss: 0.3 },
      }),
    );
    expect(await sut.logs(op, job.id)).toEqual(['l2', 'l3', 'l4', 'l5', 'l6']);
    expect(await sut.logs(op, job.id, { tail: 2 })).toEqual(['l5', 'l6']);
    expect(await sut.logs(op, job.id, { full: true })).toEqual(['l1', 'l2', 'l3', 'l4', 'l5', 'l6']);
    expect((await sut.metrics(op, job.id)).map((m) => [m.epoch, m.metrics.mAP50])).toEqual([
      [1, 0.1],
      [2, 0.2],
    ]);
    expect(await sut.get(op, job.id)).toMatchObject({
      epochsDone: 2,
      epochs: 3,
      lastMetrics: { mAP50: 0.2 },
    });

    const onnx = await storage.put(`jobs/${job.id}/1/model.onnx`, Buffer.from('onnx bytes'));
    const ready = tele('artifact.ready', {
      ...base,
      runnerId: 'gpu-1',
      artifacts: JOB_ARTIFACTS.map((name, i) =>
        name === 'model.onnx'
          ? { name, key: onnx.key, sha256: onnx.sha256, size: onnx.size }
          : { name, key: `jobs/${job.id}/1/${name}`, sha256: String(i).repeat(64), size: 100 + i },
      ),
      model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet', 'head'] },
      metrics: { mAP50: 0.31, mAP50_95: 0.12, precision: 0.5, recall: 0.4 },
      codeVersion: 'v0.1.0',
    });
    await sut.handleTelemetry(ready);
    await sut.handleTelemetry(ready);
    await sut.handleTelemetry(tele('train.status', { ...base, runnerId: 'gpu-1', status: 'succeeded' }));
    const done = await sut.get(op, job.id);
    expect(done).toMatchObject({ status: 'succeeded', message: 'succeeded: helmets-demo-builtin@1' });
    const version = await models.get(op, done.modelVersionId!);
    expect(version).toMatchObject({
      ref: 'helmets-demo-builtin@1',
      stages: ['candidate'],
      lineage: { dataset: 'helmets-demo@2', jobId: job.id, runnerId: 'gpu-1', codeVersion: 'v0.1.0' },
    });
    expect(modelEvents.filter((e) => e.type === 'model.registered')).toHaveLength(1);

    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'training.log')).toHaveLength(2);
    expect(types.filter((t) => t === 'training.metrics')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'training.finished')).toEqual([
      expect.objectContaining({ status: 'succeeded', modelRef: 'helmets-demo-builtin@1' }),
    ]);
    expect((await sut.runners())[0]).toMatchObject({ id: 'gpu-1', busyJobId: null, live: true });
  });

  it('fails a job whose reported model is not in storage, differs from its sha256, or lies outside its folder', async () => {
    const sut = make();
    await sut.handleTelemetry(heartbeat('gpu-1'));
    await sut.handleTelemetry(heartbeat('gpu-2'));
    await sut.handleTelemetry(heartbeat('gpu-3'));
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await sut.start(op, { dataset: 'helmets-demo', config }));
    const report = (
      jobId: string,
      runnerId: string,
      artifact: { key: string; sha256: string; size: number },
    ) =>
      tele('artifact.ready', {
        jobId,
        attempt: 1,
        runnerId,
        artifacts: [{ name: 'model.onnx', ...artifact }],
        model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet'] },
        metrics: {},
      });
    const [missing, tampered, outside] = await Promise.all(jobs.map((j) => sut.get(op, j.id)));
    await sut.handleTelemetry(
      report(missing!.id, missing!.runnerId!, {
        key: `jobs/${missing!.id}/1/model.onnx`,
        sha256: 'a'.repeat(64),
        size: 3,
      }),
    );
    const stored = await storage.put(`jobs/${tampered!.id}/1/model.onnx`, Buffer.from('abc'));
    await sut.handleTelemetry(
      report(tampered!.id, tampered!.runnerId!, { key: stored.key, sha256: 'f'.repeat(64), size: 3 }),
    );
    const foreign = await storage.put(`jobs/other/1/model.onnx`, Buffer.from('abc'));
    await sut.handleTelemetry(
      report(outside!.id, outside!.runnerId!, { key: foreign.key, sha256: foreign.sha256, size: 3 }),
    );
    const after = await Promise.all(jobs.map((j) => sut.get(op, j.id)));
    expect(after.map((j) => j.status)).toEqual(['failed', 'failed', 'failed']);
    expect(after[0]!.message).toMatch(/not in storage/);
    expect(after[1]!.message).toMatch(/sha256/);
    expect(after[2]!.message).toMatch(/outside/);
    expect(await models.list(op)).toEqual([]);
  });

  it('re-queues a job whose runner went silent, ignores the old attempt, and fails after the last attempt', async () => {
    const sut = make({ maxAttempts: 2 });
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    await sut.handleTelemetry(
      tele('train.status', { jobId: job.id, attempt: 1, runnerId: 'gpu-1', status: 'running' }),
    );
    clock += 30_000;
    expect(await sut.checkTimeouts()).toEqual([]);
    clock += 31_000;
    const [requeued] = await sut.checkTimeouts();
    expect(requeued).toMatchObject({ status: 'queued', attempt: 2, runnerId: null });
    expect(events.at(-1)).toMatchObject({
      type: 'training.status',
      message: 'runner gpu-1 stopped responding; re-queued (attempt 2 of 2)',
    });
    await vi.waitFor(() =>
      expect(sent('train.cancel')).toEqual([
        expect.objectContaining({
          target: 'gpu-1',
          payload: expect.objectContaining({ jobId: job.id, attempt: 1 }),
        }),
      ]),
    );

    // The same runner comes back and gets attempt 2; late messages of attempt 1 change nothing.
    await sut.handleTelemetry(heartbeat('gpu-1'));
    expect(await sut.get(op, job.id)).toMatchObject({ status: 'assigned', runnerId: 'gpu-1', attempt: 2 });
    await vi.waitFor(() =>
      expect(sent('train.start').at(-1)).toMatchObject({
        target: 'gpu-1',
        payload: { attempt: 2, uploads: { 'model.onnx': { key: `jobs/${job.id}/2/model.onnx` } } },
      }),
    );
    const before = events.length;
    const stale = { jobId: job.id, attempt: 1 };
    await sut.handleTelemetry(
      tele('train.metrics', { ...stale, epoch: 1, epochs: 3, kind: 'epoch', metrics: { mAP50: 0.9 } }),
    );
    await sut.handleTelemetry(tele('train.log', { ...stale, seq: 0, lines: ['old'] }));
    await sut.handleTelemetry(tele('train.status', { ...stale, runnerId: 'gpu-1', status: 'failed' }));
    expect(events.length).toBe(before);
    expect(await sut.metrics(op, job.id, { attempt: 1 })).toEqual([]);
    expect(await sut.logs(op, job.id)).toEqual([]);
    expect(await sut.get(op, job.id)).toMatchObject({ status: 'assigned', attempt: 2 });
    clock += 61_000;
    const [failed] = await sut.checkTimeouts();
    expect(failed).toMatchObject({ status: 'failed', attempt: 2 });
    expect(failed!.message).toMatch(/stopped responding.*failed after 2 attempts/);
    expect(events.at(-1)).toMatchObject({ type: 'training.finished', status: 'failed' });
  });

  it('checks timeouts on its own once started', async () => {
    const sut = make();
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    clock += 61_000;
    const stop = sut.startTimeoutChecks(10);
    await vi.waitFor(async () => expect((await sut.get(op, job.id)).status).toBe('failed'), {
      timeout: TIMEOUT,
    });
    stop();
  });

  it('sends train.start again, same attempt, when the assigned runner keeps heartbeating idle (the platform died before sending it)', async () => {
    const sut = make();
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    await vi.waitFor(() => expect(sent('train.start')).toHaveLength(1));
    // within the grace period the first message may still be in flight: not sent again
    clock += 5_000;
    await sut.handleTelemetry(heartbeat('gpu-1'));
    expect(sent('train.start')).toHaveLength(1);
    clock += 6_000;
    await sut.handleTelemetry(heartbeat('gpu-1'));
    expect(sent('train.start')).toHaveLength(2);
    expect(sent('train.start').map((m) => (m.payload as MessagePayload<'train.start'>).attempt)).toEqual([
      1, 1,
    ]);
    // once per grace period, and never once the runner names the job
    await sut.handleTelemetry(heartbeat('gpu-1'));
    expect(sent('train.start')).toHaveLength(2);
    clock += 11_000;
    await sut.handleTelemetry(heartbeat('gpu-1', ['builtin'], job.id));
    expect(sent('train.start')).toHaveLength(2);
    expect(await sut.get(op, job.id)).toMatchObject({ status: 'assigned', attempt: 1, runnerId: 'gpu-1' });
  });

  it('keeps a job alive while its runner heartbeats naming it', async () => {
    const sut = make();
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    for (let i = 0; i < 4; i++) {
      clock += 40_000;
      await sut.handleTelemetry(heartbeat('gpu-1', ['builtin'], job.id));
      expect(await sut.checkTimeouts()).toEqual([]);
    }
    expect((await sut.get(op, job.id)).status).toBe('assigned');
  });

  it('cancels a queued job at once and tells the runner of a running one', async () => {
    const sut = make();
    const queued = await sut.start(op, { dataset: 'helmets-demo', config });
    expect(await sut.cancel(op, queued.id)).toMatchObject({ status: 'cancelled' });
    await sut.handleTelemetry(heartbeat('gpu-1'));
    expect(sent('train.start')).toHaveLength(0);
    const running = await sut.start(op, { dataset: 'helmets-demo', config });
    await sut.handleTelemetry(
      tele('train.status', { jobId: running.id, attempt: 1, runnerId: 'gpu-1', status: 'running' }),
    );
    expect((await sut.cancel(op, running.id, 'wrong dataset')).status).toBe('cancelled');
    await vi.waitFor(() =>
      expect(sent('train.cancel')).toEqual([
        expect.objectContaining({
          target: 'gpu-1',
          payload: { jobId: running.id, attempt: 1, reason: 'wrong dataset' },
        }),
      ]),
    );
    await expect(sut.cancel(op, running.id)).rejects.toSatisfy((e) => isPlatformError(e, 'conflict'));
    await expect(sut.cancel(ctxFor('viewer'), running.id)).rejects.toSatisfy((e) =>
      isPlatformError(e, 'forbidden'),
    );
    // The runner stays reserved until its heartbeat no longer names the cancelled job.
    const next = await sut.start(op, { dataset: 'helmets-demo', config });
    expect((await sut.get(op, next.id)).status).toBe('queued');
    await sut.handleTelemetry(heartbeat('gpu-1'));
    expect((await sut.get(op, next.id)).runnerId).toBe('gpu-1');
  });

  it('tells a runner that reports on a job it does not own to stop, and survives bad messages', async () => {
    const sut = make();
    await sut.handleTelemetry(heartbeat('gpu-1'));
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    await sut.handleTelemetry(
      tele('train.status', { jobId: job.id, attempt: 1, runnerId: 'gpu-rogue', status: 'running' }),
    );
    expect((await sut.get(op, job.id)).status).toBe('assigned');
    await vi.waitFor(() =>
      expect(sent('train.cancel')).toEqual([expect.objectContaining({ target: 'gpu-rogue' })]),
    );
    await expect(sut.handleTelemetry({ nope: true })).resolves.toBeUndefined();
    await expect(
      sut.handleTelemetry({
        ...tele('train.log', { jobId: job.id, attempt: 1, seq: 0, lines: [] }),
        payload: { jobId: 5 },
      }),
    ).resolves.toBeUndefined();
    await expect(
      sut.handleTelemetry(tele('train.log', { jobId: 'job_unknown', attempt: 1, seq: 0, lines: ['x'] })),
    ).resolves.toBeUndefined();
  });

  it('refuses viewers, bad configs and unknown datasets with clear errors', async () => {
    const sut = make();
    await expect(sut.start(ctxFor('viewer'), { dataset: 'helmets-demo', config })).rejects.toSatisfy((e) =>
      isPlatformError(e, 'forbidden'),
    );
    await expect(
      sut.start(op, { dataset: 'helmets-demo', config: { ...config, epochs: 0 } }),
    ).rejects.toSatisfy((e) => isPlatformError(e, 'invalid_input') && /epochs/.test(e.message));
    await expect(sut.start(op, { dataset: 'helmets-v9', config })).rejects.toSatisfy(
      (e) => isPlatformError(e, 'not_found') && /known datasets/.test(e.message),
    );
    await expect(sut.start(op, { dataset: 'helmets-demo', config, name: 'Bad Name!' })).rejects.toSatisfy(
      (e) => isPlatformError(e, 'invalid_input'),
    );
    await expect(sut.get(ctxFor('viewer', 'p2'), 'job_x')).rejects.toSatisfy((e) =>
      isPlatformError(e, 'not_found'),
    );
  });

  it('consumes vision.telemetry as the named single-active consumer', async () => {
    const sut = make();
    const sub = await sut.startConsumers();
    const job = await sut.start(op, { dataset: 'helmets-demo', config });
    await broker.publish(STREAMS.telemetry, heartbeat('gpu-1'));
    await vi.waitFor(async () => expect((await sut.get(op, job.id)).status).toBe('assigned'), {
      timeout: TIMEOUT,
    });
    await sub.close();
  });

  it('lists jobs, and feeds them to search', async () => {
    const sut = make();
    const a = await sut.start(op, { dataset: 'helmets-demo', config });
    clock += 1;
    const b = await sut.start(op, { dataset: 'helmets-demo', config });
    await sut.cancel(op, a.id);
    expect((await sut.list(op)).map((j) => j.id)).toEqual([b.id, a.id]);
    expect((await sut.list(op, { status: 'cancelled' })).map((j) => j.id)).toEqual([a.id]);
    expect(await sut.list(ctxFor('viewer', 'p2'))).toEqual([]);
    const outbox = await db.kysely
      .selectFrom('search_outbox')
      .select(['doc_id', 'doc'])
      .where('kind', '=', 'job')
      .orderBy('seq')
      .execute();
    expect(JSON.parse(outbox.at(-1)!.doc!)).toMatchObject({
      id: a.id,
      fields: { status: 'cancelled', dataset: 'helmets-demo@2' },
    });
    const docs = [];
    for await (const d of trainingSearchDocs(db)) docs.push(d);
    expect(docs.map((d) => d.id).sort()).toEqual([a.id, b.id].sort());
  });
});
