import os from 'node:os';
import path from 'node:path';
import type { Config } from '../services/config.js';
import { createBroker } from '../services/infra/broker/index.js';
import type { Logger } from '../services/log.js';

/** Options of `visioninapp gpu-runner`. */
export interface GpuRunnerCommandOptions {
  id?: string;
  workDir?: string;
  backends: string;
  python?: string;
}

/** `visioninapp gpu-runner`: a training worker on its own machine, connected to the broker only. */
export async function runGpuRunnerCommand(config: Config, log: Logger, opts: GpuRunnerCommandOptions): Promise<void> {
  const { GpuRunner } = await import('../gpu-runner/index.js');
  const { TRAIN_BACKENDS } = await import('../services/infra/broker/index.js');
  const backends = opts.backends.split(',').map((b) => b.trim());
  const unknown = backends.filter((b) => !(TRAIN_BACKENDS as readonly string[]).includes(b));
  if (unknown.length > 0) throw new Error(`unknown backend ${unknown.join(', ')}; choose from ${TRAIN_BACKENDS.join(', ')}`);
  if (config.RABBITMQ_STREAM_URL === undefined)
    log.warn('RABBITMQ_STREAM_URL is not set: this runner uses an in-process broker and can only serve a platform in this same process');
  const broker = await createBroker({ rabbitmqUrl: config.RABBITMQ_STREAM_URL, log });
  const id = opts.id ?? `gpu-${os.hostname()}`;
  const python = opts.python ?? config.TRAIN_PYTHON;
  const runner = new GpuRunner({
    id,
    broker,
    log: log.child({ runner: id }),
    workDir: path.resolve(opts.workDir ?? path.join(config.DATA_DIR, 'gpu-runner')),
    backends: backends as Array<(typeof TRAIN_BACKENDS)[number]>,
    ...(python === undefined ? {} : { python }),
  });
  await runner.start();
  log.info({ backends: runner.backends, unavailable: runner.unavailableReasons }, `gpu-runner ${id} started`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log.info('stopping: a running job is reported failed so the platform can retry it');
  await runner.stop();
  await broker.close();
}
