import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import {
  makeEnvelope,
  messageSchemas,
  type Envelope,
  type MessagePayload,
} from '../services/infra/broker/index.js';
import type { Detector, RawImage } from '../vision/index.js';
import type { DeviceMetrics } from './device-metrics.js';
import type { CommandOutcome, ModelRecord, ModelStore } from './model-store.js';
import { loadWithFallback, tensorrtCacheDir, type ExecutionProvider } from './providers.js';
import { hashFile, selfTest } from './self-test.js';

type ApplyPayload = MessagePayload<'deploy.apply'>;
type RollbackPayload = MessagePayload<'deploy.rollback'>;
type HealthState = MessagePayload<'device.health'>['state'];
type Ref = { deploymentId: string; rolloutId: string; modelVersionId: string };

/** A model loaded and ready to serve, with the provider it runs on. */
export interface Active {
  detector: Detector;
  record: ModelRecord;
  provider: ExecutionProvider;
}

/**
 * Where a deploy (or rollback) stands. `idle` between commands; a deploy goes
 * `downloading → verifying → loading (→ building, a TensorRT engine not yet cached) → testing`
 * and then switches atomically (health `healthy`) or keeps the old model (`failed`); a rollback
 * goes `loading → testing` on the previous model.
 */
export type DeployState =
  | { phase: 'idle' }
  | { phase: 'downloading'; deploymentId: string; progress: number }
  | { phase: 'verifying'; deploymentId: string }
  | { phase: 'loading'; deploymentId: string }
  | { phase: 'building'; deploymentId: string; buildStarted: number }
  | { phase: 'testing'; deploymentId: string };

/** What the deployer needs from the runner. */
export interface DeployerOptions {
  deviceId: string;
  dataDir: string;
  store: ModelStore;
  log: Logger;
  deploys: DeviceMetrics['deploys'];
  /** Publishes one telemetry envelope (through the offline buffer). */
  publish: (envelope: Envelope) => Promise<unknown>;
  /** Publishes a heartbeat now. */
  heartbeat: () => Promise<void>;
  /** Publish a heartbeat whenever the deploy state changes. */
  heartbeatOnChange: boolean;
  providers: ExecutionProvider[];
  hardware: string;
  tensorrtVersion: string;
  threads?: number;
  conf: number;
  /** Frames the self-test runs a new model on. */
  recentFrames: () => RawImage[];
  downloadTimeoutMs?: number;
  /** Aborted when the runner stops. */
  signal: AbortSignal;
}

/**
 * The edge runner's deploy state machine: holds the model being served and applies deploy and
 * rollback commands one at a time, in arrival order. A deploy is download → verify → load →
 * self-test → atomic switch; any failure keeps the old model. Every outcome is recorded in the
 * model store so a command that arrives again is answered from the record.
 */
export class Deployer {
  /** The model being served. */
  active: Active | undefined;
  /** The last error a person should see (cleared by a successful deploy). */
  lastError: string | undefined;
  private current: DeployState = { phase: 'idle' };
  private commands: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: DeployerOptions) {}

  /** The deploy phase now. */
  get state(): DeployState {
    return this.current;
  }

  /** Progress of the phase in [0, 1] (a TensorRT build is estimated from the last build on this device). */
  progress(): number | undefined {
    const d = this.current;
    if (d.phase === 'idle') return undefined;
    if (d.phase === 'building') {
      // onnxruntime gives no TensorRT build progress; estimate from the last build on this device (5 min when unknown).
      const expected = (this.opts.store.lastBuildSeconds ?? 300) * 1000;
      return Math.min(0.95, (Date.now() - d.buildStarted) / expected);
    }
    if (d.phase === 'downloading') return Math.max(0, Math.min(1, d.progress));
    return d.phase === 'verifying' ? 1 : 0;
  }

  /** Handles one control message meant for this device (deploy, rollback, status request); others are ignored. */
  onControl(env: Envelope): Promise<void> | void {
    const id = this.opts.deviceId;
    if (env.target !== undefined && env.target !== id) return;
    if (env.type === 'deploy.apply') {
      const p = messageSchemas['deploy.apply'].safeParse(env.payload);
      if (!p.success || p.data.deviceId !== id) return;
      return this.enqueue(() => this.apply(p.data));
    }
    if (env.type === 'deploy.rollback') {
      const p = messageSchemas['deploy.rollback'].safeParse(env.payload);
      if (!p.success || p.data.deviceId !== id) return;
      return this.enqueue(() => this.rollback(p.data));
    }
    if (env.type === 'status.request') {
      const p = messageSchemas['status.request'].safeParse(env.payload);
      if (!p.success) return;
      const mine = p.data.deployments.filter((d) => d.deviceId === id);
      if (mine.length > 0) return this.enqueue(() => this.answerStatusRequest(mine));
    }
  }

  /** Resumes the deploy that was being applied when the device stopped, if any. */
  resumePending(): void {
    const pending = messageSchemas['deploy.apply'].safeParse(this.opts.store.pending);
    if (!pending.success) return;
    this.opts.log.info(
      { deploymentId: pending.data.deploymentId },
      'resuming the deploy that was in progress before the restart',
    );
    void this.enqueue(() => this.apply(pending.data));
  }

  /** Loads the model this device last switched to (or the previous one when that fails). */
  async restore(): Promise<void> {
    const { store, log } = this.opts;
    for (const record of [store.current, store.previous]) {
      if (!record) continue;
      try {
        const { sha256 } = await hashFile(store.modelPath(record));
        if (sha256 !== record.sha256)
          throw new PlatformError(
            'internal',
            `model file ${record.file} on disk is corrupted (sha256 ${sha256})`,
          );
        this.active = await this.load(record);
        log.info(
          { versionId: record.versionId, provider: this.active.provider },
          'serving the model from before the restart',
        );
        if (record !== store.current)
          this.lastError = `could not restore ${store.current?.versionId}; serving the previous model`;
        return;
      } catch (err) {
        this.lastError = `cannot load ${record.versionId}: ${(err as Error).message}`;
        log.error({ versionId: record.versionId, err: (err as Error).message }, 'cannot restore model');
      }
    }
  }

  /** Waits for the command in progress, then unloads the model. */
  async stop(): Promise<void> {
    await this.commands;
    const a = this.active;
    this.active = undefined;
    await a?.detector.dispose();
  }

  private get stopping(): boolean {
    return this.opts.signal.aborted;
  }

  /** Runs control commands one at a time, in arrival order. */
  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.commands.then(fn);
    this.commands = run.catch((err: unknown) => this.opts.log.error({ err }, 'control command failed'));
    return run;
  }

  private to(next: DeployState): void {
    this.current = next;
    if (next.phase !== 'idle' && this.opts.heartbeatOnChange) void this.opts.heartbeat();
  }

  // back to idle once a command ends, with a heartbeat showing the outcome
  private settle(): void {
    this.current = { phase: 'idle' };
    if (!this.stopping && this.opts.heartbeatOnChange) void this.opts.heartbeat();
  }

  private async reportHealth(
    ref: Ref,
    state: HealthState,
    extra: Partial<MessagePayload<'device.health'>> = {},
  ) {
    const payload = { deviceId: this.opts.deviceId, ...ref, state, ...extra };
    await this.opts.publish(makeEnvelope('device.health', payload, { source: `edge-${this.opts.deviceId}` }));
  }

  private async replay(o: CommandOutcome, p: { deploymentId: string; rolloutId: string }): Promise<void> {
    this.opts.log.info(
      { key: o.key, state: o.state },
      'command already handled; reporting its outcome again',
    );
    const ref = { deploymentId: p.deploymentId, rolloutId: p.rolloutId, modelVersionId: o.modelVersionId };
    await this.reportHealth(ref, o.state, { message: `already handled: ${o.message ?? o.state}` });
  }

  /** Reports again the outcome of each named deployment this device handled (the platform may have missed it). */
  private async answerStatusRequest(deployments: Array<{ deploymentId: string; rolloutId: string }>) {
    const { store } = this.opts;
    for (const d of deployments) {
      const done = store.outcome(`rollback:${d.deploymentId}`) ?? store.outcome(`deploy:${d.deploymentId}`);
      if (done) await this.replay(done, d);
    }
    await this.opts.heartbeat();
  }

  // the model file for a deploy: already on disk from an earlier deploy, or downloaded to a temp file
  private async fetch(p: ApplyPayload): Promise<{ sha256: string; size: number; tmpPath?: string }> {
    const { store } = this.opts;
    const onDisk = path.join(store.modelsDir, `${p.model.sha256}.onnx`);
    if (existsSync(onDisk)) return hashFile(onDisk);
    return store.download(p.model.url, p.model, {
      signal: this.opts.signal,
      ...(this.opts.downloadTimeoutMs === undefined ? {} : { timeoutMs: this.opts.downloadTimeoutMs }),
      onProgress: (bytes) => {
        if (this.current.phase === 'downloading')
          this.current.progress = p.model.size > 0 ? bytes / p.model.size : 1;
      },
    });
  }

  /** Applies one deploy: download → verify → load → self-test → atomic switch; any failure keeps the old model. */
  private async apply(p: ApplyPayload): Promise<void> {
    const { store, log: runnerLog } = this.opts;
    const key = `deploy:${p.deploymentId}`;
    const done = store.outcome(key);
    if (done) return this.replay(done, p);
    const ref = { deploymentId: p.deploymentId, rolloutId: p.rolloutId, modelVersionId: p.model.versionId };
    const log = runnerLog.child({ deploymentId: p.deploymentId, versionId: p.model.versionId });
    const outcome = { key, modelVersionId: p.model.versionId, rolloutId: p.rolloutId };
    await store.setPending(p);
    let tmpPath: string | undefined;
    let loaded: Active | undefined;
    try {
      await this.reportHealth(ref, 'downloading');
      this.to({ phase: 'downloading', deploymentId: p.deploymentId, progress: 0 });
      const fetched = await this.fetch(p);
      const { sha256, size } = fetched;
      tmpPath = fetched.tmpPath;
      await this.reportHealth(ref, 'verifying');
      this.to({ phase: 'verifying', deploymentId: p.deploymentId });
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
        await store.install(tmpPath, sha256);
        tmpPath = undefined;
      }
      await this.reportHealth(ref, 'loading');
      this.to({ phase: 'loading', deploymentId: p.deploymentId });
      const { deploymentId, rolloutId, model } = p;
      const record: ModelRecord = {
        deploymentId,
        rolloutId,
        versionId: model.versionId,
        name: model.name,
        version: model.version,
        sha256,
        size,
        layout: model.layout,
        inputSize: model.inputSize,
        classNames: model.classNames,
        file: `${model.sha256}.onnx`,
        activatedAt: Date.now(),
      };
      loaded = await this.load(record);
      this.to({ phase: 'testing', deploymentId });
      const test = await selfTest(loaded.detector, record, this.opts.recentFrames(), this.opts.conf);
      if (this.stopping) throw new PlatformError('unavailable', 'stopping');
      const old = this.active;
      this.active = loaded;
      loaded = undefined;
      this.lastError = undefined;
      await store.activate(record, { ...outcome, state: 'healthy', at: Date.now() });
      void old?.detector.dispose();
      this.opts.deploys.inc({ outcome: 'healthy' });
      log.info({ provider: this.active.provider, ...test }, 'switched to the new model');
      await this.reportHealth(ref, 'healthy', { ...test, message: `serving on ${this.active.provider}` });
    } catch (err) {
      if (tmpPath) await store.discard(tmpPath);
      await loaded?.detector.dispose();
      if (this.stopping) {
        log.info('deploy interrupted by shutdown; it resumes on the next start');
        return;
      }
      const message = (err as Error).message;
      log.warn({ err: message }, 'deploy failed; keeping the current model');
      this.opts.deploys.inc({ outcome: 'failed' });
      await store.record({ ...outcome, state: 'failed', message, at: Date.now() });
      const serving = this.active ? ` (still serving ${this.active.record.versionId})` : '';
      await this.reportHealth(ref, 'failed', { message: `${message}${serving}` });
    } finally {
      this.settle();
    }
  }

  /** Returns to the previous model when `deploymentId` is the one being served; otherwise there is nothing to undo. */
  private async rollback(p: RollbackPayload): Promise<void> {
    const { store, log } = this.opts;
    const key = `rollback:${p.deploymentId}`;
    const done = store.outcome(key);
    if (done) return this.replay(done, p);
    const current = store.current;
    const deployed = store.outcome(`deploy:${p.deploymentId}`);
    const versionId =
      current?.deploymentId === p.deploymentId
        ? current.versionId
        : (deployed?.modelVersionId ?? current?.versionId ?? 'none');
    const ref = { deploymentId: p.deploymentId, rolloutId: p.rolloutId, modelVersionId: versionId };
    const outcome = { key, modelVersionId: versionId, rolloutId: p.rolloutId };
    if (current?.deploymentId !== p.deploymentId) {
      const message = `deployment ${p.deploymentId} is not being served here (serving ${current?.versionId ?? 'no model'}); nothing to undo`;
      await store.record({ ...outcome, state: 'rolled_back', message, at: Date.now() });
      await this.reportHealth(ref, 'rolled_back', { message });
      return;
    }
    const previous = store.previous;
    try {
      let restored: Active | undefined;
      if (previous) {
        this.to({ phase: 'loading', deploymentId: p.deploymentId });
        restored = await this.load(previous);
        await selfTest(restored.detector, previous, this.opts.recentFrames(), this.opts.conf);
      }
      const old = this.active;
      this.active = restored;
      const message = `rolled back to ${previous?.versionId ?? 'no model'}: ${p.reason}`;
      await store.rollBack(previous, { ...outcome, state: 'rolled_back', message, at: Date.now() });
      void old?.detector.dispose();
      this.opts.deploys.inc({ outcome: 'rolled_back' });
      log.info({ deploymentId: p.deploymentId, to: previous?.versionId ?? null }, 'rolled back');
      await this.reportHealth(ref, 'rolled_back', { message });
    } catch (err) {
      const message = `rollback failed: ${(err as Error).message}; still serving ${current.versionId}`;
      log.error({ deploymentId: p.deploymentId, err: (err as Error).message }, message);
      await store.record({ ...outcome, state: 'failed', message, at: Date.now() });
      await this.reportHealth(ref, 'failed', { message });
    } finally {
      this.settle();
    }
  }

  /** Loads a recorded model with the provider fallback; a TensorRT engine not yet cached shows as `building`. */
  private async load(record: ModelRecord): Promise<Active> {
    const { providers, dataDir, store } = this.opts;
    let tensorrt: { dir: string } | undefined;
    let building = false;
    if (providers[0] === 'tensorrt') {
      const root = path.join(dataDir, 'trt-cache');
      const dir = tensorrtCacheDir(root, record.sha256, this.opts.hardware, this.opts.tensorrtVersion);
      await mkdir(dir, { recursive: true });
      tensorrt = { dir };
      building = !(await readdir(dir)).some((f) => f.endsWith('.engine'));
      const d = this.current;
      if (building && d.phase !== 'idle')
        this.to({ phase: 'building', deploymentId: d.deploymentId, buildStarted: Date.now() });
    }
    const t0 = Date.now();
    const { detector, provider } = await loadWithFallback(store.modelPath(record), providers, {
      layout: record.layout,
      names: record.classNames,
      inputSize: record.inputSize,
      ...(this.opts.threads ? { threads: this.opts.threads } : {}),
      ...(tensorrt ? { tensorrt } : {}),
      log: this.opts.log,
    });
    if (building && provider === 'tensorrt') await store.setLastBuildSeconds((Date.now() - t0) / 1000);
    return { detector, record, provider };
  }
}
