import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EdgeRunner } from '../../edge-runner/index.js';
import { FolderSource } from '../../edge-runner/sources/index.js';
import { GpuRunner } from '../../gpu-runner/index.js';
import { configSchema } from '../../app/config.js';
import { systemPrincipal, type CallContext } from '../../core/context.js';
import {
  STREAMS,
  type Envelope,
  type MessagePayload,
  type MessageType,
  type Subscription,
} from '../../services/infra/broker/index.js';
import { createLogger, silentLogger, type Logger } from '../../core/log.js';
import type { ModelVersion } from '../../services/models/index.js';
import { createPlatform, type Platform } from '../../app/platform.js';
import type { RolloutStatus } from '../../services/fleet/index.js';
import { generateYoloDataset } from '../../vision/index.js';
import { startHttpServer } from '../../app/http.js';
import { freePort } from '../services.fixtures.js';

/** A whole embedded platform for an end-to-end test: HTTP server, GPU runner, edge runners and a recorder of both streams. */
export interface E2eEnv {
  platform: Platform;
  root: string;
  ctx: CallContext;
  log: Logger;
  /** Every envelope seen on `vision.control`, in order. */
  control: Envelope[];
  /** Every envelope seen on `vision.telemetry`, in order. */
  telemetry: Envelope[];
  devices: Map<string, EdgeRunner>;
  gpu: GpuRunner | undefined;
  /** Id of the GPU runner (when started). */
  gpuId: string | undefined;
  close(): Promise<void>;
}

/** Options of `startE2ePlatform`. */
export interface E2eOptions {
  /** Extra configuration (env-style strings), e.g. RABBITMQ_STREAM_URL or S3_BUCKET. */
  env?: Record<string, string>;
  /** Starts an in-process GPU runner with the builtin backend on the platform broker (default true). */
  gpuRunner?: boolean;
}

const LOG_LEVEL = process.env.E2E_LOG_LEVEL;

/**
 * Builds the platform with `createPlatform` (embedded adapters unless `env` says otherwise), starts it,
 * serves its HTTP app on a free port (so signed storage URLs work), and records both streams.
 */
export async function startE2ePlatform(opts: E2eOptions = {}): Promise<E2eEnv> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'vision-e2e-'));
  const port = await freePort();
  const log = LOG_LEVEL ? createLogger(LOG_LEVEL as 'info') : silentLogger();
  const config = configSchema.parse({
    DATA_DIR: path.join(root, 'platform'),
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    EMBEDDED_GPU_RUNNER: 'false',
    SIMULATED_DEVICES: '0',
    DEMO_DATASET: 'false',
    DEVICE_ONLINE_WINDOW_S: '6',
    // importSyntheticDataset writes under <root>/datasets
    IMPORT_ROOTS: path.join(root, 'datasets'),
    ...opts.env,
  });
  const platform = await createPlatform(config, log);
  await platform.start();
  const http = await startHttpServer(platform, { port, host: '127.0.0.1' });
  const control: Envelope[] = [];
  const telemetry: Envelope[] = [];
  const subs: Subscription[] = [
    await platform.infra.broker.subscribe(STREAMS.control, { from: 'first' }, (e) => void control.push(e)),
    await platform.infra.broker.subscribe(
      STREAMS.telemetry,
      { from: 'first' },
      (e) => void telemetry.push(e),
    ),
  ];
  let gpu: GpuRunner | undefined;
  const gpuId = opts.gpuRunner === false ? undefined : `e2e-gpu-${randomBytes(3).toString('hex')}`;
  if (gpuId !== undefined) {
    gpu = new GpuRunner({
      id: gpuId,
      broker: platform.infra.broker,
      log: log.child({ runner: 'e2e-gpu' }),
      workDir: path.join(root, 'gpu-runner'),
      backends: ['builtin'],
      heartbeatMs: 1000,
      logFlushMs: 200,
    });
    await gpu.start();
  }
  const devices = new Map<string, EdgeRunner>();
  const ctx: CallContext = { user: systemPrincipal(), projectId: 'default', requestId: 'e2e', log };
  return {
    platform,
    root,
    ctx,
    log,
    control,
    telemetry,
    devices,
    gpu,
    gpuId,
    async close() {
      for (const d of devices.values()) await d.stop().catch(() => undefined);
      await gpu?.stop().catch(() => undefined);
      for (const s of subs) await s.close().catch(() => undefined);
      await http.close();
      await platform.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns something truthy; fails with `what` and the last value seen. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T> | T,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Generates a small synthetic helmet dataset (seeded) and imports it through DatasetService; returns its ref and folder. */
export async function importSyntheticDataset(
  env: E2eEnv,
  name: string,
  counts = { train: 24, val: 8, test: 8 },
): Promise<{ ref: string; dir: string; testImages: string }> {
  const dir = path.join(env.root, 'datasets', name);
  await generateYoloDataset({ outDir: dir, seed: 20261125, counts, size: 96, concurrency: 2 });
  const res = await env.platform.datasets.import(env.ctx, {
    name,
    source: { kind: 'folder', path: dir },
    format: 'yolo',
    tags: ['e2e'],
  });
  return { ref: res.ref, dir, testImages: path.join(dir, 'images', 'test') };
}

/** Short builtin training settings that finish quickly on a loaded 2-core machine. */
export const SHORT_TRAINING = {
  backend: 'builtin',
  model: 'builtin-n',
  epochs: 2,
  imgsz: 64,
  batch: 8,
  seed: 1,
  extra: { workers: 1 },
} as const;

/** Trains through TrainingService on the platform's GPU runner and returns the registered version. */
export async function trainModel(
  env: E2eEnv,
  dataset: string,
  name: string,
  epochs: number = SHORT_TRAINING.epochs,
): Promise<ModelVersion> {
  const job = await env.platform.training.start(env.ctx, {
    dataset,
    name,
    config: { ...SHORT_TRAINING, extra: { ...SHORT_TRAINING.extra }, epochs },
  });
  const done = await waitFor(
    `training job ${job.id} to finish`,
    async () => {
      const j = await env.platform.training.get(env.ctx, job.id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
    },
    240_000,
    500,
  );
  if (done.status !== 'succeeded' || done.modelVersionId === null)
    throw new Error(`training ${job.id} ended ${done.status}: ${done.message ?? ''}`);
  return env.platform.models.get(env.ctx, done.modelVersionId);
}

/** Options of one simulated device. */
export interface DeviceSpec {
  id: string;
  tags: string[];
  /** Folder of frames the device loops over. */
  frames: string;
  uncertainBand?: [number, number];
  /** Feedback caps; feedback is off when undefined. */
  feedback?: { perMinute: number; perHour: number };
  heartbeatMs?: number;
}

/** Starts the real EdgeRunner in process on the platform broker, feedback uploads through FeedbackService's signed URLs. */
export async function startDevice(env: E2eEnv, spec: DeviceSpec): Promise<EdgeRunner> {
  const { platform } = env;
  const runner = new EdgeRunner({
    deviceId: spec.id,
    name: spec.id,
    tags: spec.tags,
    broker: platform.infra.broker,
    dataDir: path.join(env.root, 'devices', spec.id),
    source: new FolderSource({ dir: spec.frames, maxFps: 4 }),
    ...(spec.uncertainBand ? { uncertainBand: spec.uncertainBand } : {}),
    ...(spec.feedback
      ? {
          feedback: {
            ...spec.feedback,
            requestUploadUrls: async (count: number) =>
              (await platform.feedback.issueUploadUrls(spec.id, count)).map(({ url, key }) => ({ url, key })),
          },
        }
      : {}),
    httpPort: 0,
    log: env.log.child({ device: spec.id }),
    heartbeatMs: spec.heartbeatMs ?? 1000,
    threads: 1,
  });
  await runner.start();
  env.devices.set(spec.id, runner);
  return runner;
}

/** Stops a device (it sends nothing more) and forgets it. */
export async function stopDevice(env: E2eEnv, id: string): Promise<void> {
  await env.devices.get(id)?.stop();
  env.devices.delete(id);
}

/** Waits until the fleet lists every id online under `tag`. */
export async function waitOnline(env: E2eEnv, tag: string, ids: string[]): Promise<void> {
  await waitFor(
    `devices ${ids.join(', ')} online under ${tag}`,
    async () => {
      const listed = await env.platform.fleet.list(env.ctx, { tag });
      return ids.every((id) => listed.some((d) => d.id === id && d.health.online));
    },
    30_000,
  );
}

/** Waits until the rollout reaches one of `states` (default: any final state). */
export async function waitRollout(
  env: E2eEnv,
  id: string,
  states: string[] = ['completed', 'rolled_back', 'failed'],
  timeoutMs = 90_000,
): Promise<RolloutStatus> {
  return waitFor(
    `rollout ${id} to reach ${states.join('|')}`,
    async () => {
      const s = await env.platform.rollouts.status(env.ctx, id);
      return states.includes(s.state) ? s : undefined;
    },
    timeoutMs,
    300,
  );
}

/** Payloads of recorded control or telemetry envelopes of one type. */
export function payloads<T extends MessageType>(
  list: Envelope[],
  type: T,
  filter: (p: MessagePayload<T>) => boolean = () => true,
): Array<MessagePayload<T>> {
  return list
    .filter((e) => e.type === type)
    .map((e) => e.payload as MessagePayload<T>)
    .filter(filter);
}

/**
 * Registers a model file as a new version of `name`, the way `artifact.ready` does (stored object,
 * sha256, layout, classes), for models that did not come out of a training run.
 */
export async function registerModelFile(
  env: E2eEnv,
  name: string,
  bytes: Buffer,
  meta: { inputSize: number; classNames: string[]; note: string },
): Promise<ModelVersion> {
  const jobId = `job_e2e_${randomBytes(4).toString('hex')}`;
  const key = `models/${jobId}/model.onnx`;
  const put = await env.platform.infra.storage.put(key, bytes, { contentType: 'application/octet-stream' });
  const { version } = await env.platform.models.registerFromArtifact({
    projectId: env.ctx.projectId,
    name,
    job: {
      id: jobId,
      attempt: 1,
      runnerId: null,
      config: { ...SHORT_TRAINING, extra: { note: meta.note } },
      dataset: { name: 'e2e-helmets', version: 1 },
    },
    artifact: {
      jobId,
      attempt: 1,
      runnerId: 'e2e',
      artifacts: [{ name: 'model.onnx', key, sha256: put.sha256, size: put.size }],
      model: { layout: 'ultralytics', inputSize: meta.inputSize, classNames: meta.classNames },
      metrics: {},
    },
    createdBy: env.ctx.user.userId,
  });
  return version;
}

/** The bytes of a version's ONNX file as stored. */
export async function modelBytes(env: E2eEnv, mv: ModelVersion): Promise<Buffer> {
  return env.platform.infra.storage.getBuffer(mv.model.key);
}

/** First image of a folder (for `POST /infer`). */
export async function firstImage(dir: string): Promise<Buffer> {
  const files = (await readdir(dir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  return readFile(path.join(dir, files[0]!));
}

/** Hex sha256 of bytes. */
export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
