import type { Command } from 'commander';
import { createLogger } from '../core/log.js';
import { action, config, fail } from './cli-support.js';

/** The worker commands: `gpu-runner` and `edge-runner`. */
export async function registerWorkerCommands(program: Command): Promise<void> {
  program
    .command('gpu-runner')
    .description('run a training worker (connects to the broker and presigned storage URLs only)')
    .option('--id <id>', 'runner id (default gpu-<hostname>)')
    .option('--work-dir <dir>', 'folder for claims and job files (default DATA_DIR/gpu-runner)')
    .option('--backends <list>', 'comma-separated: builtin, ultralytics, yolox', 'builtin,ultralytics,yolox')
    .option('--python <path>', 'Python with torch + onnx + pillow (default TRAIN_PYTHON or /usr/bin/python3)')
    .option(
      '--heartbeat-seconds <seconds>',
      'heartbeat interval; keep it well under the platform JOB_HEARTBEAT_TIMEOUT_S',
      '5',
    )
    .action(
      action(
        async (
          cfg,
          log,
          opts: {
            id?: string;
            workDir?: string;
            backends: string;
            python?: string;
            heartbeatSeconds: string;
          },
        ) => {
          const { runGpuRunnerCommand } = await import('./gpu-runner-command.js');
          await runGpuRunnerCommand(cfg, log, opts);
        },
      ),
    );

  {
    const { edgeRunnerOptionsSchema } = await import('../edge-runner/command.js');
    const edge = program
      .command('edge-runner')
      .description(
        'run the device agent on a Jetson (or any machine): inference, deploys, telemetry, feedback',
      );
    // one flag per option of the schema, e.g. deviceId → --device-id; VISIONINAPP_EDGE_* variables fill what is not given
    for (const [key, schema] of Object.entries(edgeRunnerOptionsSchema.shape)) {
      const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      edge.option(`--${flag} <value>`, (schema as { description?: string }).description ?? key);
    }
    edge.action(async (opts: Record<string, string>) => {
      const cfg = config();
      const log = createLogger(cfg.LOG_LEVEL, undefined, { format: cfg.LOG_FORMAT });
      try {
        const { edgeOptionsFromEnv, runEdgeRunnerCommand } = await import('../edge-runner/index.js');
        await runEdgeRunnerCommand(
          { ...edgeOptionsFromEnv(), ...opts } as Parameters<typeof runEdgeRunnerCommand>[0],
          { log },
        );
      } catch (err) {
        fail(err);
      }
    });
  }
}
