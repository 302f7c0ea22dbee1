import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { PlatformError } from '../core/errors.js';
import {
  makeEnvelope,
  messageSchemas,
  STREAMS,
  type Broker,
  type Envelope,
  type MessagePayload,
  type Subscription,
} from '../services/infra/broker/index.js';
import type { Logger } from '../core/log.js';
import {
  DEFAULT_MAX_IMAGE_PIXELS,
  decodeImage,
  letterboxToTensor,
  type Detection,
  type Detector,
  type RawImage,
} from '../vision/index.js';
import { deviceApp, listen } from './device-api.js';
import { createDeviceMetrics, type DeviceMetrics } from './device-metrics.js';
import { FeedbackSampler, type FeedbackOptions } from './feedback.js';
import { ModelStore, type CommandOutcome, type ModelRecord } from './model-store.js';
import { TelemetryOutbox } from './outbox.js';
import {
  detectHardware,
  detectTensorrtVersion,
  loadWithFallback,
  providerListSchema,
  tensorrtCacheDir,
  type ExecutionProvider,
} from './providers.js';
import { HttpPushSource, type Frame, type FrameSource } from './sources/index.js';
import { InferenceStats, percentile } from './stats.js';
import { CpuMeter, readMemoryUsedMb, readTemperature, THERMAL_ROOTS } from './system.js';

/** Version string the runner reports in heartbeats. */
export const EDGE_RUNNER_VERSION = '0.1.0';

/** Options of `EdgeRunner`. */
export interface EdgeRunnerOptions {
  deviceId: string;
  name?: string;
  tags: string[];
  broker: Broker;
  /** Folder for the state file, models, TensorRT engines, telemetry buffer and pending feedback. */
  dataDir: string;
  source: FrameSource;
  /** Execution providers in order of preference (default `['cpu']`), e.g. `['tensorrt', 'cuda', 'cpu']`. */
  providers?: string[];
  /** Top confidence in [low, high) marks a frame uncertain (default [0.25, 0.5]). */
  uncertainBand?: [number, number];
  /** Enables feedback sampling and upload. */
  feedback?: FeedbackOptions;
  /** Local HTTP API port (0 = any free port); no API when undefined. */
  httpPort?: number;
  /** Address the API binds (default 127.0.0.1; 0.0.0.0 exposes it to the network, still behind the key). */
  httpHost?: string;
  /**
   * Key every device API route but `GET /healthz` requires (`X-Device-Key` or `Authorization: Bearer`), at
   * least 16 characters; see `deviceApiKeyFromToken`. When absent, a random key is created once and kept
   * in `<dataDir>/device-api-key` (owner-only).
   */
  apiKey?: string;
  /** Largest image (width x height) the device decodes from `POST /infer` (default `DEFAULT_MAX_IMAGE_PIXELS`). */
  maxImagePixels?: number;
  /** Largest request body of the device API in bytes (default 25 MiB). */
  maxBodyBytes?: number;
  log: Logger;
  /** Heartbeat interval (default 5 s). */
  heartbeatMs?: number;
  /** Detection confidence threshold (default 0.25, lowered to the uncertain band's floor). */
  conf?: number;
  /** onnxruntime intra-op threads (0 = onnxruntime's default). */
  threads?: number;
  /** Hardware name in heartbeats (default: device-tree model or CPU model). */
  hardware?: string;
  /** TensorRT version used in the engine cache key (default: from libnvinfer on disk). */
  tensorrtVersion?: string;
  thermalRoots?: string[];
  /** Bounds of the offline telemetry buffer. */
  outbox?: { maxRecords?: number; maxBytes?: number; retryMs?: number };
  /** Frames the self-test runs a new model on (default 3, from the most recent frames). */
  selfTestFrames?: number;
  downloadTimeoutMs?: number;
  /** Publish a heartbeat whenever the deploy state changes (default true). */
  heartbeatOnChange?: boolean;
}

type DeployPhase = 'downloading' | 'verifying' | 'loading' | 'building' | 'testing';
type ApplyPayload = MessagePayload<'deploy.apply'>;
type RollbackPayload = MessagePayload<'deploy.rollback'>;

interface Active {
  detector: Detector;
  record: ModelRecord;
  provider: ExecutionProvider;
}

interface Deploying {
  deploymentId: string;
  phase: DeployPhase;
  progress?: number;
  buildStarted?: number;
}

const RECENT_FRAMES = 5;

/**
 * The device agent: registers and heartbeats, runs the frame source through the current model,
 * applies deploy/rollback commands from `vision.control` (download, verify, load, self-test, then
 * an atomic switch; the old model serves until then), buffers telemetry while offline, samples
 * uncertain frames for feedback, and serves a local HTTP API.
 */
export class EdgeRunner {
  readonly deviceId: string;
  private readonly log: Logger;
  private readonly store: ModelStore;
  private readonly outbox: TelemetryOutbox;
  private readonly sampler: FeedbackSampler | undefined;
  private readonly stats = new InferenceStats();
  private readonly metrics: DeviceMetrics;
  private readonly providers: ExecutionProvider[];
  private readonly band: [number, number];
  private readonly conf: number;
  private readonly hardware: string;
  private readonly tensorrtVersion: string;
  private readonly cpu = new CpuMeter();
  private readonly source: string;
  private active: Active | undefined;
  private deploying: Deploying | undefined;
  private lastError: string | undefined;
  private recent: Frame[] = [];
  private sub: Subscription | undefined;
  private subscribing: Promise<void> | undefined;
  private hbTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private api: { url: string; close: () => Promise<void> } | undefined;
  private key: string | undefined;
  private commands: Promise<unknown> = Promise.resolve();
  private readonly aborter = new AbortController();
  private started = false;
  private stopping = false;
  private sourceEnded = false;

  constructor(private readonly opts: EdgeRunnerOptions) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.deviceId)) {
      throw new PlatformError(
        'invalid_input',
        `device id "${opts.deviceId}" must be 1-64 letters, digits, dots, dashes or underscores`,
      );
    }
    this.deviceId = opts.deviceId;
    this.log = opts.log.child({ device: opts.deviceId });
    const parsed = providerListSchema.safeParse(opts.providers ?? ['cpu']);
    if (!parsed.success)
      throw new PlatformError('invalid_input', parsed.error.issues.map((i) => i.message).join('; '));
    this.providers = parsed.data;
    const band = opts.uncertainBand ?? [0.25, 0.5];
    if (!(band[0] >= 0 && band[0] < band[1] && band[1] <= 1)) {
      throw new PlatformError(
        'invalid_input',
        `uncertain band must be two numbers 0 <= low < high <= 1, got [${band.join(', ')}]`,
      );
    }
    this.band = band;
    this.conf = Math.min(opts.conf ?? 0.25, band[0]);
    this.hardware = opts.hardware ?? detectHardware();
    this.tensorrtVersion =
      opts.tensorrtVersion ?? (this.providers.includes('tensorrt') ? detectTensorrtVersion() : 'none');
    this.source = opts.source.description;
    this.store = new ModelStore(opts.dataDir, this.log);
    this.outbox = new TelemetryOutbox({
      broker: opts.broker,
      file: path.join(opts.dataDir, 'telemetry-buffer.jsonl'),
      log: this.log,
      ...opts.outbox,
    });
    if (opts.feedback) {
      this.sampler = new FeedbackSampler({
        ...opts.feedback,
        deviceId: opts.deviceId,
        dir: path.join(opts.dataDir, 'feedback'),
        band,
        publish: (stream, env) => this.outbox.publish(stream, env),
        log: this.log,
      });
    }
    this.metrics = createDeviceMetrics(opts.deviceId, {
      fps: () => this.stats.summary().fps,
      model: () =>
        this.active
          ? {
              versionId: this.active.record.versionId,
              name: this.active.record.name,
              version: this.active.record.version,
              provider: this.active.provider,
            }
          : undefined,
      feedback: () => this.sampler?.counts,
      telemetry: () => ({ buffered: this.outbox.buffered, dropped: this.outbox.dropped }),
      framesDropped: () => opts.source.dropped,
    });
  }

  /** URL of the local HTTP API once started (when `httpPort` was given). */
  get httpUrl(): string | undefined {
    return this.api?.url;
  }

  /** The device API key (known once started): send it as `X-Device-Key` to every route but `/healthz`. */
  get apiKey(): string | undefined {
    return this.key;
  }

  /** The model being served, with the provider it runs on. */
  get current():
    { versionId: string; deploymentId: string; sha256: string; provider: ExecutionProvider } | undefined {
    const a = this.active;
    return a
      ? {
          versionId: a.record.versionId,
          deploymentId: a.record.deploymentId,
          sha256: a.record.sha256,
          provider: a.provider,
        }
      : undefined;
  }

  /** Telemetry waiting for the broker, and how many messages were dropped from the full buffer. */
  get telemetryBuffer(): { buffered: number; dropped: number } {
    return { buffered: this.outbox.buffered, dropped: this.outbox.dropped };
  }

  /** Feedback counters, when feedback is enabled. */
  get feedbackCounts(): FeedbackSampler['counts'] | undefined {
    return this.sampler?.counts;
  }

  /** Rolling inference figures. */
  get inference(): ReturnType<InferenceStats['summary']> {
    return this.stats.summary();
  }

  /** Restores the last model, starts the API, the frame loop, the control consumer and heartbeats. */
  async start(): Promise<void> {
    if (this.started) throw new PlatformError('conflict', `edge runner ${this.deviceId} is already started`);
    this.started = true;
    await mkdir(this.opts.dataDir, { recursive: true, mode: 0o700 });
    await this.store.load();
    await this.outbox.start();
    await this.restore();
    if (this.opts.httpPort !== undefined) {
      this.key = await this.loadApiKey();
      const app = deviceApp({
        apiKey: this.key,
        ...(this.opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: this.opts.maxBodyBytes }),
        infer: (image, conf) => this.inferImage(image, conf),
        health: () => this.healthBody(),
        registry: this.metrics.registry,
        ...(this.opts.source instanceof HttpPushSource ? { routes: this.opts.source.router() } : {}),
        log: this.log,
      });
      this.api = await listen(app, this.opts.httpPort, this.opts.httpHost ?? '127.0.0.1');
      this.log.info({ url: this.api.url }, 'device API listening');
    }
    await this.sampler?.start();
    this.loop = this.runLoop();
    const pending = messageSchemas['deploy.apply'].safeParse(this.store.pending);
    if (pending.success) {
      this.log.info(
        { deploymentId: pending.data.deploymentId },
        'resuming the deploy that was in progress before the restart',
      );
      void this.enqueue(() => this.apply(pending.data));
    }
    this.subscribing = this.subscribe();
    await this.heartbeat();
    this.hbTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs ?? 5000);
    this.hbTimer.unref();
  }

  /** Stops everything; an interrupted deploy is resumed on the next start. Closes the frame source. */
  async stop(): Promise<void> {
    if (!this.started || this.stopping) return;
    this.stopping = true;
    this.aborter.abort();
    clearInterval(this.hbTimer);
    await this.subscribing;
    await this.sub?.close();
    await this.opts.source.close();
    await this.loop;
    await this.commands;
    await this.sampler?.stop();
    await this.api?.close();
    await this.outbox.stop();
    const a = this.active;
    this.active = undefined;
    await a?.detector.dispose();
  }

  // the configured key, or one made once and kept owner-only in the data folder for local integrations to read
  private async loadApiKey(): Promise<string> {
    const file = path.join(this.opts.dataDir, 'device-api-key');
    if (this.opts.apiKey !== undefined) {
      if (this.opts.apiKey.length < 16)
        throw new PlatformError('invalid_input', 'the device API key must be at least 16 characters');
      await writeFile(file, `${this.opts.apiKey}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
      return this.opts.apiKey;
    }
    const stored = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (stored.length >= 16) return stored;
    const created = randomBytes(32).toString('base64url');
    await writeFile(file, `${created}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    this.log.info({ file }, 'created a device API key; local clients send it as the X-Device-Key header');
    return created;
  }

  /** Runs one encoded image through the current model (the `POST /infer` path). */
  async inferImage(
    image: Buffer,
    conf?: number,
  ): Promise<{
    modelVersionId: string;
    provider: string;
    latencyMs: number;
    width: number;
    height: number;
    detections: Detection[];
  }> {
    const active = this.active;
    if (!active)
      throw new PlatformError(
        'unavailable',
        `device ${this.deviceId} has no model yet; deploy one with a rollout`,
      );
    const raw = await decodeImage(image, { maxPixels: this.opts.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS });
    const t0 = performance.now();
    const detections = await active.detector.detect(raw, { conf: conf ?? this.conf });
    const latencyMs = performance.now() - t0;
    this.metrics.inferenceSeconds.observe(latencyMs / 1000);
    return {
      modelVersionId: active.record.versionId,
      provider: active.provider,
      latencyMs: Math.round(latencyMs * 100) / 100,
      width: raw.width,
      height: raw.height,
      detections,
    };
  }

  /** Publishes one heartbeat now (also runs on the interval). */
  async heartbeat(): Promise<void> {
    try {
      const s = this.stats.summary();
      const d = this.deploying;
      const payload: MessagePayload<'device.heartbeat'> = {
        deviceId: this.deviceId,
        name: this.opts.name ?? this.deviceId,
        tags: this.opts.tags,
        hardware: this.hardware,
        runtime: {
          node: process.version,
          onnxruntime: ort.env.versions.node ?? 'unknown',
          tensorrt: this.tensorrtVersion,
          os: `${os.platform()} ${os.release()} ${os.arch()}`,
          edgeRunner: EDGE_RUNNER_VERSION,
          source: this.source,
        },
        provider: this.active?.provider ?? this.providers[0]!,
        modelVersionId: this.active?.record.versionId ?? null,
        previousModelVersionId: this.store.previous?.versionId ?? null,
        state: this.state(),
        fps: s.fps,
        latencyP50Ms: s.latencyP50Ms,
        latencyP95Ms: s.latencyP95Ms,
        meanTopConfidence: s.meanTopConfidence,
        cpuPercent: this.cpu.read(),
        memoryMb: await readMemoryUsedMb(),
        temperatureC: await readTemperature(this.opts.thermalRoots ?? THERMAL_ROOTS),
        ...(d ? { buildProgress: this.progress(d) } : {}),
      };
      await this.publish(makeEnvelope('device.heartbeat', payload, { source: this.sourceName() }));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private state(): MessagePayload<'device.heartbeat'>['state'] {
    if (this.deploying?.phase === 'building') return 'building';
    if (this.deploying) return 'loading';
    if (this.lastError && !this.active) return 'error';
    return this.active ? 'serving' : 'idle';
  }

  private progress(d: Deploying): number {
    if (d.phase === 'building' && d.buildStarted !== undefined) {
      // onnxruntime gives no TensorRT build progress; estimate from the last build on this device (5 min when unknown).
      const expected = (this.store.lastBuildSeconds ?? 300) * 1000;
      return Math.min(0.95, (Date.now() - d.buildStarted) / expected);
    }
    return Math.max(0, Math.min(1, d.progress ?? 0));
  }

  private healthBody(): { ok: boolean } & Record<string, unknown> {
    const s = this.stats.summary();
    return {
      ok: this.active !== undefined,
      deviceId: this.deviceId,
      state: this.state(),
      modelVersionId: this.active?.record.versionId ?? null,
      provider: this.active?.provider ?? null,
      source: this.source,
      sourceEnded: this.sourceEnded,
      fps: s.fps,
      latencyP95Ms: s.latencyP95Ms,
      telemetryBuffered: this.outbox.buffered,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private sourceName(): string {
    return `edge-${this.deviceId}`;
  }

  private publish(envelope: Envelope): Promise<unknown> {
    return this.outbox.publish(STREAMS.telemetry, envelope);
  }

  private async subscribe(): Promise<void> {
    let delay = 500;
    while (!this.stopping) {
      try {
        this.sub = await this.opts.broker.subscribe(
          STREAMS.control,
          { name: `edge-${this.deviceId}`, from: 'next' },
          (env) => this.onControl(env),
        );
        return;
      } catch (err) {
        this.log.warn(
          { err: (err as Error).message, retryMs: delay },
          'cannot subscribe to vision.control yet; retrying',
        );
        await this.sleep(delay);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private onControl(env: Envelope): Promise<void> | void {
    if (env.target !== undefined && env.target !== this.deviceId) return;
    if (env.type === 'deploy.apply') {
      const p = messageSchemas['deploy.apply'].safeParse(env.payload);
      if (!p.success || p.data.deviceId !== this.deviceId) return;
      return this.enqueue(() => this.apply(p.data));
    }
    if (env.type === 'deploy.rollback') {
      const p = messageSchemas['deploy.rollback'].safeParse(env.payload);
      if (!p.success || p.data.deviceId !== this.deviceId) return;
      return this.enqueue(() => this.rollback(p.data));
    }
    if (env.type === 'status.request') {
      const p = messageSchemas['status.request'].safeParse(env.payload);
      if (!p.success) return;
      const mine = p.data.deployments.filter((d) => d.deviceId === this.deviceId);
      if (mine.length > 0) return this.enqueue(() => this.answerStatusRequest(mine));
    }
  }

  /** Reports again the outcome of each named deployment this device handled (the platform may have missed it). */
  private async answerStatusRequest(
    deployments: Array<{ deploymentId: string; rolloutId: string }>,
  ): Promise<void> {
    for (const d of deployments) {
      const done =
        this.store.outcome(`rollback:${d.deploymentId}`) ?? this.store.outcome(`deploy:${d.deploymentId}`);
      if (done) await this.replay(done, d);
    }
    await this.heartbeat();
  }

  /** Runs control commands one at a time, in arrival order. */
  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.commands.then(fn);
    this.commands = run.catch((err: unknown) => this.log.error({ err }, 'control command failed'));
    return run;
  }

  private async reportHealth(
    p: { deploymentId: string; rolloutId: string; modelVersionId: string },
    state: MessagePayload<'device.health'>['state'],
    extra: Partial<MessagePayload<'device.health'>> = {},
  ): Promise<void> {
    await this.publish(
      makeEnvelope(
        'device.health',
        { deviceId: this.deviceId, ...p, state, ...extra },
        { source: this.sourceName() },
      ),
    );
  }

  private async replay(o: CommandOutcome, p: { deploymentId: string; rolloutId: string }): Promise<void> {
    this.log.info({ key: o.key, state: o.state }, 'command already handled; reporting its outcome again');
    await this.reportHealth(
      { deploymentId: p.deploymentId, rolloutId: p.rolloutId, modelVersionId: o.modelVersionId },
      o.state,
      {
        message: `already handled: ${o.message ?? o.state}`,
      },
    );
  }

  private setPhase(deploymentId: string, phase: DeployPhase, progress?: number): void {
    this.deploying = {
      deploymentId,
      phase,
      ...(progress === undefined ? {} : { progress }),
      ...(phase === 'building' ? { buildStarted: Date.now() } : {}),
    };
    if (this.opts.heartbeatOnChange !== false) void this.heartbeat();
  }

  /** Applies one deploy: download → verify → load → self-test → atomic switch; any failure keeps the old model. */
  private async apply(p: ApplyPayload): Promise<void> {
    const key = `deploy:${p.deploymentId}`;
    const done = this.store.outcome(key);
    if (done) return this.replay(done, p);
    const ref = { deploymentId: p.deploymentId, rolloutId: p.rolloutId, modelVersionId: p.model.versionId };
    const log = this.log.child({ deploymentId: p.deploymentId, versionId: p.model.versionId });
    await this.store.setPending(p);
    let tmpPath: string | undefined;
    let loaded: Active | undefined;
    try {
      await this.reportHealth(ref, 'downloading');
      this.setPhase(p.deploymentId, 'downloading', 0);
      const file = `${p.model.sha256}.onnx`;
      let sha256: string;
      let size: number;
      if (existsSync(path.join(this.store.modelsDir, file))) {
        ({ sha256, size } = await hashFile(path.join(this.store.modelsDir, file)));
      } else {
        const dl = await this.store.download(p.model.url, p.model, {
          signal: this.aborter.signal,
          ...(this.opts.downloadTimeoutMs === undefined ? {} : { timeoutMs: this.opts.downloadTimeoutMs }),
          onProgress: (bytes) => {
            if (this.deploying) this.deploying.progress = p.model.size > 0 ? bytes / p.model.size : 1;
          },
        });
        ({ tmpPath, sha256, size } = dl);
      }
      await this.reportHealth(ref, 'verifying');
      this.setPhase(p.deploymentId, 'verifying', 1);
      if (sha256 !== p.model.sha256) {
        throw new PlatformError(
          'invalid_input',
          `sha256 mismatch: the downloaded model hashes to ${sha256} but the registry says ${p.model.sha256}; the artifact is corrupted or was replaced, so it was not loaded`,
        );
      }
      if (size !== p.model.size)
        throw new PlatformError(
          'invalid_input',
          `size mismatch: downloaded ${size} bytes but the registry says ${p.model.size}`,
        );
      if (tmpPath) {
        await this.store.install(tmpPath, sha256);
        tmpPath = undefined;
      }
      await this.reportHealth(ref, 'loading');
      this.setPhase(p.deploymentId, 'loading');
      const record: ModelRecord = {
        deploymentId: p.deploymentId,
        rolloutId: p.rolloutId,
        versionId: p.model.versionId,
        name: p.model.name,
        version: p.model.version,
        sha256,
        size,
        layout: p.model.layout,
        inputSize: p.model.inputSize,
        classNames: p.model.classNames,
        file,
        activatedAt: Date.now(),
      };
      loaded = await this.load(record);
      this.setPhase(p.deploymentId, 'testing');
      const test = await this.selfTest(loaded);
      if (this.stopping) throw new PlatformError('unavailable', 'stopping');
      const old = this.active;
      this.active = loaded;
      loaded = undefined;
      this.lastError = undefined;
      await this.store.activate(record, {
        key,
        state: 'healthy',
        modelVersionId: record.versionId,
        rolloutId: p.rolloutId,
        at: Date.now(),
      });
      void old?.detector.dispose();
      this.metrics.deploys.inc({ outcome: 'healthy' });
      log.info({ provider: this.active.provider, ...test }, 'switched to the new model');
      await this.reportHealth(ref, 'healthy', {
        latencyP95Ms: test.latencyP95Ms,
        meanTopConfidence: test.meanTopConfidence,
        message: `serving on ${this.active.provider}`,
      });
    } catch (err) {
      if (tmpPath) await this.store.discard(tmpPath);
      await loaded?.detector.dispose();
      if (this.stopping) {
        log.info('deploy interrupted by shutdown; it resumes on the next start');
        return;
      }
      const message = (err as Error).message;
      log.warn({ err: message }, 'deploy failed; keeping the current model');
      this.metrics.deploys.inc({ outcome: 'failed' });
      await this.store.record({
        key,
        state: 'failed',
        modelVersionId: p.model.versionId,
        rolloutId: p.rolloutId,
        message,
        at: Date.now(),
      });
      await this.reportHealth(ref, 'failed', {
        message: `${message}${this.active ? ` (still serving ${this.active.record.versionId})` : ''}`,
      });
    } finally {
      this.deploying = undefined;
      if (!this.stopping && this.opts.heartbeatOnChange !== false) void this.heartbeat();
    }
  }

  /** Returns to the previous model when `deploymentId` is the one being served; otherwise there is nothing to undo. */
  private async rollback(p: RollbackPayload): Promise<void> {
    const key = `rollback:${p.deploymentId}`;
    const done = this.store.outcome(key);
    if (done) return this.replay(done, p);
    const current = this.store.current;
    const deployed = this.store.outcome(`deploy:${p.deploymentId}`);
    const versionId =
      current?.deploymentId === p.deploymentId
        ? current.versionId
        : (deployed?.modelVersionId ?? current?.versionId ?? 'none');
    const ref = { deploymentId: p.deploymentId, rolloutId: p.rolloutId, modelVersionId: versionId };
    if (current?.deploymentId !== p.deploymentId) {
      const message = `deployment ${p.deploymentId} is not being served here (serving ${current?.versionId ?? 'no model'}); nothing to undo`;
      await this.store.record({
        key,
        state: 'rolled_back',
        modelVersionId: versionId,
        rolloutId: p.rolloutId,
        message,
        at: Date.now(),
      });
      await this.reportHealth(ref, 'rolled_back', { message });
      return;
    }
    const previous = this.store.previous;
    try {
      let restored: Active | undefined;
      if (previous) {
        this.setPhase(p.deploymentId, 'loading');
        restored = await this.load(previous);
        await this.selfTest(restored);
      }
      const old = this.active;
      this.active = restored;
      const message = `rolled back to ${previous?.versionId ?? 'no model'}: ${p.reason}`;
      await this.store.rollBack(previous, {
        key,
        state: 'rolled_back',
        modelVersionId: versionId,
        rolloutId: p.rolloutId,
        message,
        at: Date.now(),
      });
      void old?.detector.dispose();
      this.metrics.deploys.inc({ outcome: 'rolled_back' });
      this.log.info({ deploymentId: p.deploymentId, to: previous?.versionId ?? null }, 'rolled back');
      await this.reportHealth(ref, 'rolled_back', { message });
    } catch (err) {
      const message = `rollback failed: ${(err as Error).message}; still serving ${current.versionId}`;
      this.log.error({ deploymentId: p.deploymentId, err: (err as Error).message }, message);
      await this.store.record({
        key,
        state: 'failed',
        modelVersionId: versionId,
        rolloutId: p.rolloutId,
        message,
        at: Date.now(),
      });
      await this.reportHealth(ref, 'failed', { message });
    } finally {
      this.deploying = undefined;
      if (!this.stopping && this.opts.heartbeatOnChange !== false) void this.heartbeat();
    }
  }

  /** Loads a recorded model with the provider fallback; a TensorRT engine not yet cached shows as `building`. */
  private async load(record: ModelRecord): Promise<Active> {
    const file = this.store.modelPath(record);
    let tensorrt: { dir: string } | undefined;
    let building = false;
    if (this.providers[0] === 'tensorrt') {
      const dir = tensorrtCacheDir(
        path.join(this.opts.dataDir, 'trt-cache'),
        record.sha256,
        this.hardware,
        this.tensorrtVersion,
      );
      await mkdir(dir, { recursive: true });
      tensorrt = { dir };
      building = !(await readdir(dir)).some((f) => f.endsWith('.engine'));
      if (building && this.deploying) this.setPhase(this.deploying.deploymentId, 'building');
    }
    const t0 = Date.now();
    const { detector, provider } = await loadWithFallback(file, this.providers, {
      layout: record.layout,
      names: record.classNames,
      inputSize: record.inputSize,
      ...(this.opts.threads ? { threads: this.opts.threads } : {}),
      ...(tensorrt ? { tensorrt } : {}),
      log: this.log,
    });
    if (building && provider === 'tensorrt') await this.store.setLastBuildSeconds((Date.now() - t0) / 1000);
    return { detector, record, provider };
  }

  /**
   * Runs a freshly loaded model on recent frames (a grey frame when none came yet): every output
   * must have the expected shape and finite values, and the class count must match the version.
   */
  private async selfTest(m: Active): Promise<{ latencyP95Ms: number; meanTopConfidence: number | null }> {
    const { detector, record } = m;
    const shape = detector.outputShapes[detector.outputName] ?? [];
    const nc =
      detector.layout === 'ultralytics'
        ? (shape[1] ?? 0) - 4
        : detector.layout === 'yolox'
          ? (shape[2] ?? 0) - 5
          : undefined;
    if (nc !== undefined && record.classNames.length > 0 && nc !== record.classNames.length) {
      throw new PlatformError(
        'invalid_input',
        `self-test failed: the model outputs ${nc} classes (output ${detector.outputName} [${shape.join(', ')}]) but version ${record.versionId} declares ${record.classNames.length} (${record.classNames.join(', ')}); re-export the model or fix the registry entry`,
      );
    }
    const frames: RawImage[] = this.recent.slice(-(this.opts.selfTestFrames ?? 3)).map((f) => f.image);
    if (frames.length === 0) {
      frames.push({
        data: new Uint8Array(detector.inputWidth * detector.inputHeight * 3).fill(114),
        width: detector.inputWidth,
        height: detector.inputHeight,
        channels: 3,
      });
    }
    const latencies: number[] = [];
    const tops: number[] = [];
    const yolox = detector.layout === 'yolox';
    for (const image of frames) {
      const { tensor } = letterboxToTensor(image, {
        width: detector.inputWidth,
        height: detector.inputHeight,
        color: 114,
        order: yolox ? 'bgr' : 'rgb',
        normalise: !yolox,
      });
      const out = await detector.session.run({
        [detector.inputName]: new ort.Tensor('float32', tensor, detector.inputShape),
      });
      for (const [name, expected] of Object.entries(detector.outputShapes)) {
        const t = out[name];
        if (!t || t.type !== 'float32')
          throw new PlatformError(
            'invalid_input',
            `self-test failed: output ${name} is missing or not float32`,
          );
        const dims = t.dims.map(Number);
        if (dims.join(',') !== expected.join(','))
          throw new PlatformError(
            'invalid_input',
            `self-test failed: output ${name} changed shape from [${expected.join(', ')}] to [${dims.join(', ')}] on a real frame`,
          );
        const data = t.data as Float32Array;
        for (let i = 0; i < data.length; i++) {
          if (!Number.isFinite(data[i]!))
            throw new PlatformError(
              'invalid_input',
              `self-test failed: output ${name} holds a non-finite value (${data[i]}) at index ${i}; the model is broken`,
            );
        }
      }
      const t0 = performance.now();
      const dets = await detector.detect(image, { conf: this.conf });
      latencies.push(performance.now() - t0);
      if (dets.length > 0) tops.push(Math.max(...dets.map((d) => d.score)));
    }
    latencies.sort((a, b) => a - b);
    return {
      latencyP95Ms: Math.round(percentile(latencies, 0.95) * 100) / 100,
      meanTopConfidence:
        tops.length === 0 ? null : Math.min(1, tops.reduce((a, b) => a + b, 0) / tops.length),
    };
  }

  /** Loads the model this device last switched to (or the previous one when that fails). */
  private async restore(): Promise<void> {
    for (const record of [this.store.current, this.store.previous]) {
      if (!record) continue;
      try {
        const { sha256 } = await hashFile(this.store.modelPath(record));
        if (sha256 !== record.sha256)
          throw new PlatformError(
            'internal',
            `model file ${record.file} on disk is corrupted (sha256 ${sha256})`,
          );
        this.active = await this.load(record);
        this.log.info(
          { versionId: record.versionId, provider: this.active.provider },
          'serving the model from before the restart',
        );
        if (record !== this.store.current)
          this.lastError = `could not restore ${this.store.current?.versionId}; serving the previous model`;
        return;
      } catch (err) {
        this.lastError = `cannot load ${record.versionId}: ${(err as Error).message}`;
        this.log.error({ versionId: record.versionId, err: (err as Error).message }, 'cannot restore model');
      }
    }
  }

  private async runLoop(): Promise<void> {
    const source = this.opts.source;
    while (!this.stopping) {
      let frame: Frame | undefined;
      try {
        frame = await source.next();
      } catch (err) {
        this.lastError = `frame source failed: ${(err as Error).message}`;
        this.log.error({ err: (err as Error).message }, 'frame source failed; retrying in 5 s');
        await this.sleep(5000);
        continue;
      }
      if (!frame) {
        if (!this.stopping) {
          this.sourceEnded = true;
          this.log.info({ source: this.source }, 'frame source ended; the device API keeps serving');
        }
        return;
      }
      this.recent.push(frame);
      if (this.recent.length > RECENT_FRAMES) this.recent.shift();
      const active = this.active;
      if (!active) {
        await this.sleep(100);
        continue;
      }
      const t0 = performance.now();
      let dets: Detection[];
      try {
        dets = await active.detector.detect(frame.image, { conf: this.conf });
      } catch (err) {
        if (this.active !== active) continue;
        this.metrics.inferenceErrors.inc();
        this.log.warn({ err: (err as Error).message }, 'inference failed on a frame');
        continue;
      }
      const ms = performance.now() - t0;
      const top = dets.length === 0 ? null : Math.max(...dets.map((d) => d.score));
      this.stats.record(ms, top);
      this.metrics.frames.inc();
      this.metrics.inferenceSeconds.observe(ms / 1000);
      this.sampler?.consider(frame, dets, active.record.versionId);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.aborter.signal;
      // The listener is removed when the timer fires: the loop sleeps every 100 ms while no model is loaded.
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(c);
    size += c.length;
  }
  return { sha256: hash.digest('hex'), size };
}
