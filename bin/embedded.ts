import { existsSync } from 'node:fs';
import path from 'node:path';
import { systemPrincipal, type CallContext } from '../core/context.js';
import { isPlatformError } from '../core/errors.js';
import { sleep } from '../core/retry.js';
import { isFinalRollout } from '../services/fleet/model.js';
import type { Platform } from '../app/platform.js';

/** The demo dataset every fresh platform gets, so the headline request works offline. */
export const DEMO_DATASET = 'helmets-demo';

function systemContext(platform: Platform, requestId: string): CallContext {
  return { user: systemPrincipal(), projectId: 'default', requestId, log: platform.log };
}

/** Demo sizes by DEMO_PROFILE: the generated dataset and the starter model's training. */
const DEMO_PROFILES = {
  full: {
    counts: { train: 1000, val: 200, test: 200 },
    size: 320,
    starter: { epochs: 3, imgsz: 256, batch: 16 },
  },
  tiny: { counts: { train: 24, val: 8, test: 8 }, size: 96, starter: { epochs: 1, imgsz: 64, batch: 8 } },
} as const;

/**
 * Generates the synthetic `helmets-demo` dataset (1,000 train + 200 val + 200 test; 24 + 8 + 8 with DEMO_PROFILE=tiny) and imports it, once.
 * The generated folder stays: the simulated devices read their frames from its test split.
 */
export async function ensureDemoDataset(platform: Platform): Promise<void> {
  const ctx = systemContext(platform, 'demo-dataset');
  try {
    await platform.datasets.get(ctx, DEMO_DATASET);
    return;
  } catch (err) {
    if (!isPlatformError(err, 'not_found')) throw err;
  }
  const { generateYoloDataset } = await import('../vision/index.js');
  const outDir = path.join(path.resolve(platform.config.DATA_DIR), 'demo', DEMO_DATASET);
  const profile = DEMO_PROFILES[platform.config.DEMO_PROFILE];
  const images = profile.counts.train + profile.counts.val + profile.counts.test;
  platform.log.info(
    `generating the demo dataset ${DEMO_DATASET} (${images.toLocaleString('en')} synthetic images)…`,
  );
  let lastLogged = 0;
  await generateYoloDataset({
    outDir,
    seed: 20261125,
    counts: profile.counts,
    size: profile.size,
    onProgress: ({ done, total }) => {
      if (done - lastLogged >= Math.max(1, Math.round(total / 4)) || done === total) {
        lastLogged = done;
        platform.log.info(`demo dataset: ${done}/${total} images rendered`);
      }
    },
  });
  const result = await platform.datasets.import(ctx, {
    name: DEMO_DATASET,
    description: 'Synthetic workers with and without helmets and vests (generated on first start)',
    tags: ['demo', 'synthetic'],
    source: { kind: 'folder', path: outDir },
    format: 'yolo',
  });
  platform.log.info(
    `demo dataset ${result.version.ref} imported: ${result.report.counts.imagesImported} images`,
  );
}

/** The in-process GPU runner of the embedded default; training runs in a child process, so the server never blocks. */
export async function startEmbeddedGpuRunner(platform: Platform): Promise<{ stop(): Promise<void> }> {
  const { GpuRunner } = await import('../gpu-runner/index.js');
  const python = platform.config.TRAIN_PYTHON;
  const runner = new GpuRunner({
    id: 'embedded-gpu',
    broker: platform.infra.broker,
    log: platform.log.child({ runner: 'embedded-gpu' }),
    workDir: path.join(path.resolve(platform.config.DATA_DIR), 'gpu-runner'),
    backends: ['builtin'],
    ...(python === undefined ? {} : { python }),
  });
  await runner.start();
  if (runner.backends.length === 0)
    platform.log.warn(
      `embedded GPU runner cannot train: ${Object.values(runner.unavailableReasons).join('; ')}`,
    );
  return { stop: () => runner.stop() };
}

/** Name of the model the embedded platform trains once so the simulated devices have something to serve. */
export const DEMO_MODEL = 'helmets-demo-starter';

/** Three (SIMULATED_DEVICES) simulated Jetsons on line-3 running the real edge-runner code on the demo test frames. */
export async function startSimulatedDevices(platform: Platform): Promise<{ stop(): Promise<void> }> {
  const { EdgeRunner, FolderSource } = await import('../edge-runner/index.js');
  const root = path.resolve(platform.config.DATA_DIR);
  const frames = path.join(root, 'demo', DEMO_DATASET, 'images', 'test');
  const runners: Array<{ stop(): Promise<void> }> = [];
  if (!existsSync(frames)) {
    platform.log.warn(
      `no simulated devices: their frames come from the demo dataset (${frames}); set DEMO_DATASET=true`,
    );
    return { stop: async () => undefined };
  }
  for (let i = 1; i <= platform.config.SIMULATED_DEVICES; i++) {
    const deviceId = `jetson-line3-${String(i).padStart(2, '0')}`;
    const runner = new EdgeRunner({
      deviceId,
      name: `Line 3 Jetson #${i} (simulated)`,
      tags: ['line-3', 'jetson', 'simulated'],
      broker: platform.infra.broker,
      dataDir: path.join(root, 'devices', deviceId),
      source: new FolderSource({ dir: frames, maxFps: 2 }),
      heartbeatMs: platform.config.SIMULATED_DEVICE_HEARTBEAT_S * 1000,
      hardware: 'NVIDIA Jetson Orin Nano (simulated on this machine)',
      threads: 1,
      log: platform.log.child({ device: deviceId }),
      feedback: {
        perMinute: 2,
        perHour: 30,
        requestUploadUrls: (count) => platform.feedback.issueUploadUrls(deviceId, count),
      },
    });
    await runner.start();
    runners.push(runner);
  }
  return {
    async stop() {
      for (const r of runners) await r.stop();
    },
  };
}

/** What the demo's starter model came to: the version serving on line 3, or why there is none. */
export type StarterModel = { ref: string; rollout: string } | { ref?: undefined; why: string };

/**
 * First start only: trains a small starter model on helmets-demo and rolls it out to the simulated
 * line-3 devices, as the platform's own set-up (recorded in the audit log as the system), and
 * resolves once that rollout has ended. Everything a person asks for afterwards goes through the
 * agent and its approvals.
 */
export async function bootstrapDemoModel(platform: Platform): Promise<StarterModel> {
  const ctx = systemContext(platform, 'demo-model');
  const existing = await platform.models.list(ctx, { name: DEMO_MODEL });
  if (existing.length > 0) return { ref: existing[0]!.ref, rollout: 'earlier' };
  const earlier = await platform.training.list(ctx, { limit: 100 });
  if (earlier.some((j) => j.name === DEMO_MODEL && !['failed', 'cancelled'].includes(j.status)))
    return { why: 'the starter model is still being trained by an earlier start' };
  let canTrain = false;
  for (let i = 0; i < 30 && !canTrain; i++) {
    canTrain = (await platform.training.runners()).some((r) => r.live && r.backends.includes('builtin'));
    if (!canTrain) await new Promise((r) => setTimeout(r, 500));
  }
  if (!canTrain) {
    platform.log.warn(
      'no runner can train the built-in detector (PyTorch missing?): the simulated devices stay idle until a model is deployed',
    );
    return { why: 'no runner can train the built-in detector (is PyTorch installed?)' };
  }
  const job = await platform.training.start(ctx, {
    dataset: DEMO_DATASET,
    name: DEMO_MODEL,
    config: {
      backend: 'builtin',
      model: 'builtin-n',
      ...DEMO_PROFILES[platform.config.DEMO_PROFILE].starter,
      seed: 1,
    },
  });
  await platform.audit.append({
    projectId: ctx.projectId,
    actor: { id: 'system', kind: 'system' },
    action: 'bootstrap.demo_model',
    data: { jobId: job.id, dataset: DEMO_DATASET, model: DEMO_MODEL },
  });
  platform.log.info(
    `training the starter model ${DEMO_MODEL} (job ${job.id}); the simulated devices get it when it is ready`,
  );
  const finished = await new Promise<{ status: string; modelRef?: string }>((resolve) => {
    const off = platform.events.on((e) => {
      const event = e as { type: string; job?: { id: string }; status?: string; modelRef?: string };
      if (event.type === 'training.finished' && event.job?.id === job.id) {
        off();
        resolve({
          status: event.status ?? 'failed',
          ...(event.modelRef === undefined ? {} : { modelRef: event.modelRef }),
        });
      }
    });
  });
  if (finished.status !== 'succeeded' || finished.modelRef === undefined) {
    platform.log.warn(`starter model training ${finished.status}; see job ${job.id}`);
    return { why: `the starter model training ${finished.status} (job ${job.id})` };
  }
  const rollout = await platform.rollouts.start(ctx, {
    model: finished.modelRef,
    target: { tag: 'line-3' },
    strategy: { canary: 1, waves: [100] },
  });
  platform.log.info(`starter model ${finished.modelRef} rolling out to line-3`);
  let state = rollout.state;
  while (!isFinalRollout(state)) {
    await sleep(1000);
    state = (await platform.rollouts.status(ctx, rollout.id)).state;
  }
  return state === 'completed'
    ? { ref: finished.modelRef, rollout: rollout.id }
    : { why: `the starter model rollout ${rollout.id} ended ${state.replace('_', ' ')}` };
}
