import path from 'node:path';
import { systemPrincipal, type CallContext } from '../services/context.js';
import { isPlatformError } from '../services/errors.js';
import type { Platform } from '../services/platform.js';

/** The demo dataset every fresh platform gets, so the headline request works offline. */
export const DEMO_DATASET = 'helmets-demo';

function systemContext(platform: Platform, requestId: string): CallContext {
  return { user: systemPrincipal(), projectId: 'default', requestId, log: platform.log };
}

/**
 * Generates the synthetic `helmets-demo` dataset (1,000 train + 200 val + 200 test) and imports it, once.
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
  platform.log.info(`generating the demo dataset ${DEMO_DATASET} (1,400 synthetic images)…`);
  let lastLogged = 0;
  await generateYoloDataset({
    outDir,
    seed: 20261125,
    counts: { train: 1000, val: 200, test: 200 },
    size: 320,
    onProgress: ({ done, total }) => {
      if (done - lastLogged >= 350 || done === total) {
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
  platform.log.info(`demo dataset ${result.version.ref} imported: ${result.report.counts.imagesImported} images`);
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
    platform.log.warn(`embedded GPU runner cannot train: ${Object.values(runner.unavailableReasons).join('; ')}`);
  return { stop: () => runner.stop() };
}
