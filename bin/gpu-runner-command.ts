import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../app/config.js';
import { createBroker } from '../services/infra/broker/index.js';
import type { Logger } from '../core/log.js';

/** Options of `visioninapp gpu-runner`. */
export interface GpuRunnerCommandOptions {
  id?: string;
  workDir?: string;
  backends: string;
  python?: string;
  /** Heartbeat interval in seconds (string from the command line). */
  heartbeatSeconds?: string;
}

const heartbeatSchema = z.coerce.number().min(0.2, 'at least 0.2').max(3600, 'at most 3600');

/** `visioninapp gpu-runner`: a training worker on its own machine, connected to the broker only. */
export async function runGpuRunnerCommand(
  config: Config,
  log: Logger,
  opts: GpuRunnerCommandOptions,
): Promise<void> {
  const { GpuRunner } = await import('../gpu-runner/index.js');
  const { TRAIN_BACKENDS } = await import('../services/infra/broker/index.js');
  const backends = opts.backends.split(',').map((b) => b.trim());
  const unknown = backends.filter((b) => !(TRAIN_BACKENDS as readonly string[]).includes(b));
  if (unknown.length > 0)
    throw new Error(`unknown backend ${unknown.join(', ')}; choose from ${TRAIN_BACKENDS.join(', ')}`);
  if (config.RABBITMQ_STREAM_URL === undefined)
    log.warn(
      'RABBITMQ_STREAM_URL is not set: this runner uses an in-process broker and can only serve a platform in this same process',
    );
  const heartbeat = heartbeatSchema.safeParse(opts.heartbeatSeconds ?? '5');
  if (!heartbeat.success)
    throw new Error(
      `invalid --heartbeat-seconds "${opts.heartbeatSeconds}": expected a number of seconds, ${heartbeat.error.issues[0]!.message}`,
    );
  const broker = await createBroker({
    rabbitmqUrl: config.RABBITMQ_STREAM_URL,
    log,
    // the platform's stream names, when it sets a prefix (several environments on one RabbitMQ)
    ...(config.RABBITMQ_STREAM_PREFIX === undefined ? {} : { streamPrefix: config.RABBITMQ_STREAM_PREFIX }),
  });
  const id = opts.id ?? `gpu-${os.hostname()}`;
  const python = opts.python ?? config.TRAIN_PYTHON;
  const runner = new GpuRunner({
    id,
    broker,
    log: log.child({ runner: id }),
    workDir: path.resolve(opts.workDir ?? path.join(config.DATA_DIR, 'gpu-runner')),
    backends: backends as Array<(typeof TRAIN_BACKENDS)[number]>,
    heartbeatMs: heartbeat.data * 1000,
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
