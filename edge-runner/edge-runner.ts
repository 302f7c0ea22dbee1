// size: 416 lines, at the ~400 bound: the device loop (frames, heartbeats, API); deploys are already in deployer.ts.
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { retry, sleep } from '../core/retry.js';
import {
  makeEnvelope,
  STREAMS,
  type Envelope,
  type MessagePayload,
  type Subscription,
} from '../services/infra/broker/index.js';
import { DEFAULT_MAX_IMAGE_PIXELS, decodeImage, type Detection } from '../vision/index.js';
import { Deployer, type Active } from './deployer.js';
import type { EdgeRunnerOptions } from './options.js';
import { deviceApp, listen, loadDeviceApiKey, type InferResult } from './device-api.js';
import { createDeviceMetrics, type DeviceMetrics } from './device-metrics.js';
import { FeedbackSampler } from './feedback.js';
import { ModelStore } from './model-store.js';
import { TelemetryOutbox } from './outbox.js';
import {
  detectHardware,
  detectTensorrtVersion,
  providerListSchema,
  type ExecutionProvider,
} from './providers.js';
import { HttpPushSource, type Frame } from './sources/index.js';
import { InferenceStats } from './stats.js';
import { CpuMeter, readMemoryUsedMb, readTemperature, THERMAL_ROOTS } from './system.js';

/** Version string the runner reports in heartbeats. */
export const EDGE_RUNNER_VERSION = '0.1.0';

export type { EdgeRunnerOptions } from './options.js';

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
  private readonly deployer: Deployer;
  private recent: Frame[] = [];
  private sub: Subscription | undefined;
  private subscribing: Promise<void> | undefined;
  private hbTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private api: { url: string; close: () => Promise<void> } | undefined;
  private key: string | undefined;
  private readonly aborter = new AbortController();
  private started = false;
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
    this.deployer = new Deployer({
      deviceId: opts.deviceId,
      dataDir: opts.dataDir,
      store: this.store,
      log: this.log,
      deploys: this.metrics.deploys,
      publish: (env) => this.publish(env),
      heartbeat: () => this.heartbeat(),
      heartbeatOnChange: opts.heartbeatOnChange !== false,
      providers: this.providers,
      hardware: this.hardware,
      tensorrtVersion: this.tensorrtVersion,
      ...(opts.threads ? { threads: opts.threads } : {}),
      conf: this.conf,
      recentFrames: () => this.recent.slice(-(opts.selfTestFrames ?? 3)).map((f) => f.image),
      ...(opts.downloadTimeoutMs === undefined ? {} : { downloadTimeoutMs: opts.downloadTimeoutMs }),
      signal: this.aborter.signal,
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
    await this.deployer.restore();
    if (this.opts.httpPort !== undefined) {
      this.key = await loadDeviceApiKey(this.opts.dataDir, this.opts.apiKey, this.log);
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
    this.deployer.resumePending();
    this.subscribing = this.subscribe();
    await this.heartbeat();
    this.hbTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs ?? 5000);
    this.hbTimer.unref();
  }

  /** Stops everything; an interrupted deploy is resumed on the next start. Closes the frame source. */
  async stop(): Promise<void> {
    if (!this.started || this.stopping) return;
    this.aborter.abort();
    clearInterval(this.hbTimer);
    await this.subscribing;
    await this.sub?.close();
    await this.opts.source.close();
    await this.loop;
    await this.deployer.stop();
    await this.sampler?.stop();
    await this.api?.close();
    await this.outbox.stop();
  }

  /** Runs one encoded image through the current model (the `POST /infer` path). */
  async inferImage(image: Buffer, conf?: number): Promise<InferResult> {
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
      const buildProgress = this.deployer.progress();
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
        ...(buildProgress === undefined ? {} : { buildProgress }),
      };
      await this.publish(makeEnvelope('device.heartbeat', payload, { source: this.sourceName() }));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private state(): MessagePayload<'device.heartbeat'>['state'] {
    const { phase } = this.deployer.state;
    if (phase === 'building') return 'building';
    if (phase !== 'idle') return 'loading';
    if (this.lastError && !this.active) return 'error';
    return this.active ? 'serving' : 'idle';
  }

  private get stopping(): boolean {
    return this.aborter.signal.aborted;
  }

  private get active(): Active | undefined {
    return this.deployer.active;
  }

  private get lastError(): string | undefined {
    return this.deployer.lastError;
  }

  private set lastError(message: string) {
    this.deployer.lastError = message;
  }

  private async subscribe(): Promise<void> {
    const signal = this.aborter.signal;
    try {
      this.sub = await retry(
        () =>
          this.opts.broker.subscribe(
            STREAMS.control,
            { name: `edge-${this.deviceId}`, from: 'next' },
            (env) => this.deployer.onControl(env),
          ),
        {
          retries: Infinity,
          minTimeout: 500,
          maxTimeout: 30_000,
          signal,
          onRetry: (err) =>
            this.log.warn(
              { err: (err as Error).message },
              'cannot subscribe to vision.control yet; retrying',
            ),
        },
      );
    } catch (err) {
      if (!signal.aborted) throw err;
    }
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

  private async runLoop(): Promise<void> {
    const source = this.opts.source;
    while (!this.stopping) {
      let frame: Frame | undefined;
      try {
        frame = await source.next();
      } catch (err) {
        this.lastError = `frame source failed: ${(err as Error).message}`;
        this.log.error({ err: (err as Error).message }, 'frame source failed; retrying in 5 s');
        await sleep(5000, this.aborter.signal);
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
        await sleep(100, this.aborter.signal);
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
}
