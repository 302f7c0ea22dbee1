import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CallContext, Role } from '../../core/context.js';
import { EventBus } from '../../core/events.js';
import { makeEnvelope, parseMessage, type Message, type MessagePayload } from '../../protocol/envelope.js';
import { MemoryBroker } from '../infra/broker/memory.js';
import { STREAMS, type Broker, type Subscription } from '../infra/broker/port.js';
import { MemoryCache } from '../infra/cache/memory.js';
import type { Db } from '../infra/db/port.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { LocalStorage } from '../infra/storage/local.js';
import { silentLogger } from '../../core/log.js';
import { ModelRegistry } from '../models/model.registry.js';
import { type ModelVersion } from '../models/model.js';
import type { FleetEvent } from './events.js';
import { FleetService } from './fleet.service.js';
import { RolloutController } from './rollout.controller.js';
import { RolloutService, type RolloutServiceOptions } from './rollout.service.js';

/** A call context for tests. */
export function testContext(role: Role = 'operator', projectId = 'default'): CallContext {
  return {
    user: { userId: `u_${role}`, email: `${role}@x.test`, name: role, role, kind: 'user' },
    projectId,
    requestId: 'req-test',
    log: silentLogger(),
  };
}

/** How a simulated device answers `deploy.apply`. */
export type SimBehaviour = 'healthy' | 'fail' | 'slow';

/**
 * A simulated edge device on the real broker: heartbeats on demand, answers `deploy.apply` by
 * fetching the artifact through its signed URL, checking the sha256 and reporting `device.health`,
 * and `deploy.rollback` by returning to its previous model.
 */
export class SimDevice {
  modelVersionId: string | null;
  previousModelVersionId: string | null = null;
  online = true;
  behaviour: SimBehaviour = 'healthy';
  confidence: number | null = 0.8;
  /** Mean top confidence once a new model is loaded (default: unchanged). */
  confidenceAfterSwitch: number | null | undefined;
  latencyP95Ms = 40;
  /** When set, rollbacks fail and the device keeps serving the new model. */
  rollbackFails = false;
  readonly applied = new Set<string>();
  readonly control: Message[] = [];
  readonly rollbacks: string[] = [];
  private sub: Subscription | undefined;
  /** Offset of the last control message this device finished handling (so tests can wait for it). */
  controlOffset = -1;

  constructor(
    private readonly broker: Broker,
    readonly id: string,
    readonly tags: string[],
    private readonly fetchModel: (url: string) => Promise<Buffer>,
    opts: { modelVersionId?: string | null } = {},
  ) {
    this.modelVersionId = opts.modelVersionId ?? null;
  }

  async start(): Promise<void> {
    if (this.broker instanceof MemoryBroker) this.controlOffset = this.broker.endOffset(STREAMS.control) - 1;
    this.sub = await this.broker.subscribe(STREAMS.control, { from: 'next' }, async (env, meta) => {
      try {
        if (env.target !== this.id) return;
        const parsed = parseMessage(env);
        if (!parsed.ok) return;
        this.control.push(parsed.message);
        if (!this.online) return;
        if (parsed.message.type === 'deploy.apply') await this.apply(parsed.message.payload);
        if (parsed.message.type === 'deploy.rollback') await this.rollback(parsed.message.payload);
      } finally {
        this.controlOffset = meta.offset;
      }
    });
  }

  async stop(): Promise<void> {
    await this.sub?.close();
  }

  /** Control messages of one type received so far. */
  received(type: 'deploy.apply' | 'deploy.rollback'): Message[] {
    return this.control.filter((m) => m.type === type);
  }

  async heartbeat(): Promise<void> {
    if (!this.online) return;
    await this.broker.publish(
      STREAMS.telemetry,
      makeEnvelope(
        'device.heartbeat',
        {
          deviceId: this.id,
          name: this.id,
          tags: this.tags,
          hardware: 'Jetson Orin Nano 8GB',
          runtime: { node: '20.11.0', onnxruntime: '1.23.0' },
          provider: 'cpu',
          modelVersionId: this.modelVersionId,
          previousModelVersionId: this.previousModelVersionId,
          state: this.modelVersionId === null ? 'idle' : 'serving',
          fps: 12,
          latencyP50Ms: this.latencyP95Ms / 2,
          latencyP95Ms: this.latencyP95Ms,
          meanTopConfidence: this.confidence,
          cpuPercent: 35,
          memoryMb: 900,
          temperatureC: 51,
        },
        { source: this.id },
      ),
    );
  }

  private async health(
    p: MessagePayload<'deploy.apply'>,
    state: MessagePayload<'device.health'>['state'],
    extra: Partial<MessagePayload<'device.health'>> = {},
  ) {
    await this.broker.publish(
      STREAMS.telemetry,
      makeEnvelope(
        'device.health',
        {
          deviceId: this.id,
          deploymentId: p.deploymentId,
          rolloutId: p.rolloutId,
          modelVersionId: p.model.versionId,
          state,
          ...extra,
        },
        { source: this.id },
      ),
    );
  }

  private async apply(p: MessagePayload<'deploy.apply'>): Promise<void> {
    if (this.applied.has(p.deploymentId)) return;
    this.applied.add(p.deploymentId);
    await this.health(p, 'downloading');
    const bytes = await this.fetchModel(p.model.url);
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== p.model.sha256) {
      await this.health(p, 'failed', { message: `sha256 mismatch: got ${sha.slice(0, 12)}` });
      return;
    }
    await this.health(p, 'loading');
    if (this.behaviour === 'fail') {
      await this.health(p, 'failed', { message: 'self-test failed: output tensor has the wrong shape' });
      return;
    }
    this.previousModelVersionId = this.modelVersionId;
    this.modelVersionId = p.model.versionId;
    if (this.behaviour === 'slow') this.latencyP95Ms = 500;
    if (this.confidenceAfterSwitch !== undefined) this.confidence = this.confidenceAfterSwitch;
    await this.health(p, 'healthy', { latencyP95Ms: this.latencyP95Ms, meanTopConfidence: this.confidence });
  }

  private async rollback(p: MessagePayload<'deploy.rollback'>): Promise<void> {
    this.rollbacks.push(p.deploymentId);
    if (!this.applied.has(p.deploymentId)) return;
    const left = this.modelVersionId;
    if (this.rollbackFails) {
      await this.broker.publish(
        STREAMS.telemetry,
        makeEnvelope(
          'device.health',
          {
            deviceId: this.id,
            deploymentId: p.deploymentId,
            rolloutId: p.rolloutId,
            modelVersionId: left ?? 'none',
            state: 'failed',
            message: 'previous model file is corrupt',
          },
          { source: this.id },
        ),
      );
      return;
    }
    if (this.behaviour !== 'fail' && this.previousModelVersionId !== undefined) {
      this.modelVersionId = this.previousModelVersionId;
      this.previousModelVersionId = left;
    }
    await this.broker.publish(
      STREAMS.telemetry,
      makeEnvelope(
        'device.health',
        {
          deviceId: this.id,
          deploymentId: p.deploymentId,
          rolloutId: p.rolloutId,
          modelVersionId: left ?? 'none',
          state: 'rolled_back',
        },
        { source: this.id },
      ),
    );
  }
}

/** Polls `check` until it is truthy (default 3 s), failing with `what`. */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An embedded platform slice for fleet tests: SQLite, MemoryBroker, LocalStorage, MemoryCache, registry, fleet and rollouts. */
export async function makeFleetHarness(opts: { db?: Db; dir?: string } = {}) {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'via-fleet-'));
  const db = opts.db ?? new SqliteDb({ file: path.join(dir, 'fleet.db') });
  await db.migrate();
  const broker = new MemoryBroker();
  const storage = new LocalStorage({
    root: path.join(dir, 'storage'),
    baseUrl: 'http://127.0.0.1:9',
    secret: 'fleet-test-secret-0123456789',
  });
  const cache = new MemoryCache();
  const clock = { now: 1_800_000_000_000 };
  const now = () => clock.now;
  const bus = new EventBus<FleetEvent>();
  const events: FleetEvent[] = [];
  bus.on((e) => events.push(e));
  const registry = new ModelRegistry({ db, events: new EventBus(), log: silentLogger(), now });
  const fleet = new FleetService({ db, events: bus, log: silentLogger(), onlineWindowMs: 30_000, now });
  const makeRollouts = (extra: Partial<RolloutServiceOptions> = {}) =>
    new RolloutService({
      db,
      broker,
      storage,
      models: registry,
      fleet,
      events: bus,
      log: silentLogger(),
      now,
      ...extra,
    });
  const rollouts = makeRollouts();
  const makeController = (service = rollouts) =>
    new RolloutController({ rollouts: service, broker, cache, log: silentLogger(), tickMs: 60_000 });
  const controller = makeController();
  // Telemetry reaches the fleet and every controller in order, as the platform's consumers would.
  const controllers: RolloutController[] = [controller];
  const pumped = { offset: -1 };
  const pump = await broker.subscribe(STREAMS.telemetry, { from: 'first' }, async (env, meta) => {
    await fleet.handleTelemetry(env);
    for (const c of controllers) await c.handleTelemetry(env);
    pumped.offset = meta.offset;
  });
  /** Waits until devices answered every command and all telemetry was applied. */
  const settle = async () => {
    let last = -1;
    for (let stable = 0; stable < 3;) {
      // every device finished the commands sent so far (downloads take a while on a loaded machine)
      await waitFor(
        () => devices.every((d) => d.controlOffset >= broker.endOffset(STREAMS.control) - 1),
        'devices handled commands',
        10_000,
      );
      await waitFor(
        () => pumped.offset >= broker.endOffset(STREAMS.telemetry) - 1,
        'telemetry applied',
        10_000,
      );
      await new Promise((r) => setTimeout(r, 8));
      const end = broker.endOffset(STREAMS.telemetry) * 1_000_000 + broker.endOffset(STREAMS.control);
      if (end === last) stable++;
      else {
        stable = 0;
        last = end;
      }
    }
  };
  /** One controller tick, then waits for the devices' answers. */
  const tick = async (c = controller) => {
    const result = await c.tick();
    await settle();
    return result;
  };
  const fetchModel = async (url: string) => {
    const u = new URL(url);
    const key = u.pathname
      .replace(/^\/storage\//, '')
      .split('/')
      .map(decodeURIComponent)
      .join('/');
    storage.verifySignedUrl({
      op: u.searchParams.get('op') ?? undefined,
      key,
      exp: u.searchParams.get('exp') ?? undefined,
      sig: u.searchParams.get('sig') ?? undefined,
    });
    return storage.getBuffer(key);
  };
  const devices: SimDevice[] = [];
  let jobs = 0;

  /** Registers a model version whose model.onnx holds `bytes`. */
  const registerModel = async (
    name = 'helmets',
    bytes = Buffer.from(`onnx-${name}-${jobs}`),
  ): Promise<ModelVersion> => {
    const jobId = `job_${++jobs}`;
    const put = await storage.put(`jobs/${jobId}/1/model.onnx`, bytes);
    const { version } = await registry.registerFromArtifact({
      projectId: 'default',
      name,
      job: {
        id: jobId,
        attempt: 1,
        runnerId: 'gpu-1',
        config: { backend: 'builtin', model: 'tiny', epochs: 1, imgsz: 320, batch: 4 },
        dataset: { name: 'helmets-demo', version: 1 },
      },
      artifact: {
        jobId,
        attempt: 1,
        runnerId: 'gpu-1',
        artifacts: [{ name: 'model.onnx', key: put.key, sha256: put.sha256, size: put.size }],
        model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet', 'head'] },
        metrics: { mAP50: 0.5 },
      },
      createdBy: 'u_operator',
    });
    return version;
  };

  /** Adds simulated devices `<prefix>-1..n` with `tags`, heard from once. */
  const addDevices = async (n: number, tags: string[], prefix = 'jetson', model: string | null = null) => {
    const made: SimDevice[] = [];
    for (let i = 1; i <= n; i++) {
      const d = new SimDevice(broker, `${prefix}-${i}`, tags, fetchModel, { modelVersionId: model });
      await d.start();
      await d.heartbeat();
      made.push(d);
      devices.push(d);
    }
    await settle();
    return made;
  };

  /** Every online device heartbeats once, and everything is applied. */
  const heartbeatAll = async (times = 1) => {
    for (let i = 0; i < times; i++) for (const d of devices) await d.heartbeat();
    await settle();
  };

  return {
    dir,
    db,
    broker,
    storage,
    cache,
    clock,
    now,
    bus,
    events,
    registry,
    fleet,
    rollouts,
    controller,
    controllers,
    settle,
    tick,
    makeRollouts,
    makeController,
    devices,
    registerModel,
    addDevices,
    heartbeatAll,
    cleanup: async () => {
      for (const d of devices) await d.stop();
      await pump.close();
      for (const c of controllers) await c.stop();
      await broker.close();
      await storage.close();
      await db.close();
      if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
