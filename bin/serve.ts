import type { Config } from '../app/config.js';
import type { Logger } from '../core/log.js';
import { createPlatform } from '../app/platform.js';
import { startHttpServer } from '../app/http.js';
import {
  bootstrapDemoModel,
  DEMO_DATASET,
  ensureDemoDataset,
  startEmbeddedGpuRunner,
  startSimulatedDevices,
  type StarterModel,
} from './embedded.js';

/** `visioninapp serve`: builds the platform, serves HTTP, and shuts down gracefully on SIGTERM/SIGINT. */
export async function serve(config: Config, log: Logger): Promise<void> {
  const platform = await createPlatform(config, log);
  const http = await startHttpServer(platform);
  log.info(`VisionInApp listening on ${http.url}`);
  const workers: Array<{ stop(): Promise<void> }> = [];
  const started = platform
    .start()
    .then(async () => {
      const admin = await platform.accounts.bootstrapAdmin();
      if (admin !== undefined) {
        // printed once, on first start, to the terminal only (never to the structured log)
        process.stdout.write(
          `\nFirst start: an admin account was created.\n  URL:      ${http.url}\n  e-mail:   ${admin.email}\n  password: ${admin.password}\nKeep it safe; it is not shown again.\n\n`,
        );
      }
    })
    .then(async () => {
      if (config.EMBEDDED_GPU_RUNNER) workers.push(await startEmbeddedGpuRunner(platform));
      if (config.DEMO_DATASET) await ensureDemoDataset(platform);
      if (config.SIMULATED_DEVICES > 0) workers.push(await startSimulatedDevices(platform));
      if (!config.DEMO_DATASET) return;
      const devices =
        config.SIMULATED_DEVICES > 0 ? `, ${config.SIMULATED_DEVICES} simulated Jetson(s) on line-3` : '';
      let starter = '';
      if (config.EMBEDDED_GPU_RUNNER) {
        // "ready" means a quick user finds the devices serving a model, not "warn (no model deployed)"
        process.stdout.write(
          `Preparing the demo: training a starter model on ${DEMO_DATASET} and deploying it to line 3 (a minute or two)…\n`,
        );
        const model = await bootstrapDemoModel(platform).catch((err: Error): StarterModel => ({
          why: err.message,
        }));
        starter =
          model.ref !== undefined
            ? `, starter model ${model.ref} serving`
            : ` (no starter model: ${model.why})`;
      }
      process.stdout.write(
        `Demo ready: dataset ${DEMO_DATASET}${devices}${starter}. Try in the chat at ${http.url}:\n  "train a helmet detector on dataset ${DEMO_DATASET} and deploy it to line 3 Jetsons"\n\n`,
      );
    })
    .catch((err: Error) => log.error({ err: err.message }, 'platform start failed'));

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down: no new requests, draining consumers, closing adapters');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await http.close();
    for (const worker of workers)
      await worker.stop().catch((err: Error) => log.warn({ err: err.message }, 'worker stop failed'));
    await platform.close();
    await started;
    clearTimeout(force);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
