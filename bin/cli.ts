import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from '../app/config.js';
import { createLogger, type Logger } from '../core/log.js';
import { isPlatformError } from '../core/errors.js';
import { registerAdminCommands } from './admin-commands.js';
import { progressLine } from './progress.js';

/** Exit codes: 1 = a command failed, 2 = bad configuration or usage. */
const EXIT_FAILED = 1;
const EXIT_CONFIG = 2;

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`visioninapp: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

function fail(err: unknown): never {
  const message = isPlatformError(err) || err instanceof Error ? err.message : String(err);
  process.stderr.write(`visioninapp: ${message}\n`);
  process.exit(EXIT_FAILED);
}

/** Runs a command body with a logger, turning any error into one line and exit code 1. */
function action<A extends unknown[]>(body: (cfg: Config, log: Logger, ...args: A) => Promise<void>) {
  return async (...args: A) => {
    const cfg = config();
    const log = createLogger(cfg.LOG_LEVEL);
    try {
      await body(cfg, log, ...args);
    } catch (err) {
      fail(err);
    }
  };
}

const program = new Command('visioninapp')
  .description('Conversational, agent-driven MLOps assistant for object detection')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the platform server (embedded defaults unless configured)')
  .action(
    action(async (cfg, log) => {
      const { serve } = await import('./serve.js');
      await serve(cfg, log);
    }),
  );

registerAdminCommands(program, action);

program
  .command('mcp')
  .description(
    'serve MCP on stdin/stdout for IDE and assistant clients (VISIONINAPP_TOKEN: an API token with scope "mcp")',
  )
  .action(async () => {
    const cfg = config();
    const { runStdioServer, stderrLogger } = await import('../app/mcp-stdio.js');
    try {
      await runStdioServer(cfg, stderrLogger(cfg.LOG_LEVEL), process.env.VISIONINAPP_TOKEN);
      process.exit(0);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('mcp-token')
  .description('create an API token with scope "mcp" for a member, for an MCP client (printed once)')
  .requiredOption('--email <email>', 'the member the token acts as')
  .addOption(
    new Option('--role <role>', "role of the token (at most the member's)")
      .choices(['viewer', 'operator', 'approver', 'admin'])
      .default('operator'),
  )
  .option('--days <days>', 'days until it expires', '90')
  .option('--project <id>', 'project', 'default')
  .action(
    action(
      async (
        cfg,
        log,
        opts: {
          email: string;
          role: 'viewer' | 'operator' | 'approver' | 'admin';
          days: string;
          project: string;
        },
      ) => {
        const { createPlatform } = await import('../app/platform.js');
        const { createMcpToken } = await import('../mcp-server/index.js');
        const days = Number(opts.days);
        if (!Number.isFinite(days) || days <= 0)
          throw new Error(`--days must be a positive number of days; got "${opts.days}"`);
        const platform = await createPlatform(cfg, log.child({ level: 'warn' }));
        try {
          await platform.prepare();
          const t = await createMcpToken(platform.accounts, {
            email: opts.email,
            projectId: opts.project,
            role: opts.role,
            days,
          });
          process.stdout.write(`${t.token}\n`);
          process.stderr.write(
            `token ${t.id} for ${t.email} (${t.role}) in project "${opts.project}", expires ${t.expiresAt === null ? 'never' : new Date(t.expiresAt).toISOString()}; it is shown only once\n`,
          );
        } finally {
          await platform.close();
        }
      },
    ),
  );

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
        opts: { id?: string; workDir?: string; backends: string; python?: string; heartbeatSeconds: string },
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
    const log = createLogger(cfg.LOG_LEVEL);
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

program
  .command('detect')
  .description('run any ONNX detector on an image and print detections as JSON')
  .requiredOption('--model <file>', 'ONNX model')
  .requiredOption('--image <file>', 'image (JPEG, PNG, WebP)')
  .addOption(
    new Option('--layout <layout>', 'output layout')
      .choices(['auto', 'ultralytics', 'end2end', 'yolox'])
      .default('auto'),
  )
  .option('--names <coco|file>', 'class names: "coco" or a file')
  .option('--out <file.png>', 'write the image with boxes drawn')
  .option('--conf <score>', 'minimum score', '0.25')
  .action(async (opts: Record<string, string>) => {
    try {
      const { runDetectCommand, detectOptionsSchema } = await import('../vision/index.js');
      const result = await runDetectCommand(detectOptionsSchema.parse(opts));
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('train')
  .description(
    'train a detector on a local YOLO dataset folder with a trainer backend (no server needed): progress bar, per-epoch table, outputs in --out',
  )
  .requiredOption('--data <dir>', 'YOLO dataset folder with data.yaml (or the data.yaml)')
  .addOption(
    new Option('--backend <backend>', 'trainer')
      .choices(['builtin', 'ultralytics', 'yolox'])
      .default('builtin'),
  )
  .option(
    '--model <name>',
    'architecture: builtin-n|s|t, yolo11n, yolox-s, ... (a small default per backend)',
  )
  .option('--epochs <n>', 'epochs', '30')
  .option('--imgsz <px>', 'training image size', '320')
  .option('--batch <n>', 'batch size', '16')
  .option('--lr <rate>', 'learning rate')
  .option('--seed <n>', 'random seed')
  .option(
    '--from <weights>',
    'start from these weights (best.pt of an earlier training of the same backend); classes matched by name',
  )
  .option(
    '--out <dir>',
    'output folder (model.onnx, best.pt, metrics.json, results.csv, report.md)',
    'runs/train',
  )
  .option('--threads <n>', 'CPU threads for the built-in trainer', '2')
  .option('--max-cpu-seconds <s>', 'built-in: stop after this much CPU time')
  .option('--json', 'print only the final result as JSON')
  .addHelpText(
    'after',
    `
Examples:
  visioninapp train --data ../shared/datasets/hardhat-real --epochs 100 --imgsz 320 --out runs/hardhat
  visioninapp train --data ../shared/datasets/hardhat-real --from runs/hardhat/best.pt --epochs 30 --out runs/hardhat-ft
  visioninapp train --data data/my-yolo --backend ultralytics --model yolo11n --epochs 50 --imgsz 640`,
  )
  .action(async (opts: Record<string, string | boolean | undefined>) => {
    try {
      const { runTrain, trainPrinter } = await import('./train-val.js');
      const printer = trainPrinter(opts.json === true);
      const result = await runTrain(opts as never, printer);
      printer.finish();
      if (opts.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else
        process.stdout.write(
          `\nmodel.onnx and best.pt in ${result.outDir}; check it with: visioninapp val --model ${result.files['model.onnx'] ?? 'model.onnx'} --data ${String(opts.data)}\n`,
        );
    } catch (err) {
      fail(err);
    }
  });

program
  .command('val')
  .description(
    "evaluate an ONNX detector on a local YOLO dataset's split with the platform's evaluation code: mAP50, mAP50-95, P, R and per-class AP",
  )
  .requiredOption('--model <file>', 'ONNX detector (built-in, Ultralytics, YOLO26/v10, YOLOX)')
  .requiredOption('--data <dir>', 'YOLO dataset folder with data.yaml')
  .addOption(
    new Option('--split <split>', 'which images: the split an import into the platform gives them, or all')
      .choices(['train', 'val', 'test', 'all'])
      .default('test'),
  )
  .option(
    '--names <file>',
    'model class names when the ONNX has none (data.yaml, JSON array or one per line)',
  )
  .option('--conf <score>', 'confidence of the precision/recall operating point', '0.25')
  .option('--json', 'print JSON')
  .addHelpText(
    'after',
    `
Examples:
  visioninapp val --model runs/hardhat/model.onnx --data ../shared/datasets/hardhat-real --split all
  visioninapp val --model yolo11n.onnx --data data/coco128 --names data/coco128/data.yaml --json`,
  )
  .action(async (opts: Record<string, string | boolean | undefined>) => {
    try {
      const { runVal, formatVal } = await import('./train-val.js');
      const bar = progressLine('evaluating');
      const result = await runVal(opts as never, (done, total) => bar.update(done, total, 'images'));
      bar.done();
      process.stdout.write(`${opts.json === true ? JSON.stringify(result, null, 2) : formatVal(result)}\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('eval')
  .description(
    'score a planner on the dev and held-out scenarios, side by side per family; safety scenarios run on an embedded platform; exits 1 under the thresholds',
  )
  .addOption(
    new Option(
      '--planner <planner>',
      'rules, llm or hybrid (llm and hybrid need OPENAI_API_KEY, or --scripted-llm)',
    )
      .choices(['rules', 'llm', 'hybrid'])
      .default('rules'),
  )
  .option('--scenarios <file>', 'dev scenarios, JSONL (default evals/scenarios.jsonl)')
  .option(
    '--held-out <files...>',
    'held-out scenario files, JSONL (default evals/heldout.jsonl and evals/heldout-2.jsonl)',
  )
  .option('--show-held-out', 'print held-out scenario lines too (for a report, never for tuning)')
  .option(
    '--scripted-llm',
    'answer LLM requests from a local scripted OpenAI-compatible server that knows the scenarios (checks the wire path and the safety layer, not a model)',
  )
  .option('--verbose', 'print every scenario, not only failures')
  .action(
    action(
      async (
        cfg,
        _log,
        opts: {
          planner: 'rules' | 'llm' | 'hybrid';
          scenarios?: string;
          heldOut?: string[];
          showHeldOut?: boolean;
          scriptedLlm?: boolean;
          verbose?: boolean;
        },
      ) => {
        const { runEvals, loadScenarios, DEV_FILE, HELD_OUT_FILES } = await import('../evals/run-evals.js');
        const { chatModelFromEnv } = await import('../agent/index.js');
        let server: { url: string; close(): Promise<void> } | undefined;
        if (opts.scriptedLlm === true && opts.planner !== 'rules') {
          const { startScriptedOpenAiServer } = await import('../evals/scripted-openai-server.js');
          const { scenarioOracle } = await import('../evals/scenario-oracle.js');
          const files = [opts.scenarios ?? DEV_FILE, ...(opts.heldOut ?? HELD_OUT_FILES)];
          const sets = await Promise.all(files.map((f) => loadScenarios(f)));
          server = await startScriptedOpenAiServer(scenarioOracle(sets.flatMap((x) => x.scenarios)));
        }
        try {
          const chatModel =
            opts.planner === 'rules'
              ? undefined
              : await chatModelFromEnv(
                  server
                    ? {
                        ...cfg,
                        OPENAI_API_KEY: 'scripted',
                        OPENAI_BASE_URL: server.url,
                        LLM_MODEL: 'scripted',
                      }
                    : cfg,
                );
          if (opts.planner !== 'rules' && chatModel === undefined)
            throw new Error(
              `--planner ${opts.planner} needs OPENAI_API_KEY (and OPENAI_BASE_URL for a local server), or --scripted-llm`,
            );
          const result = await runEvals({
            planner: opts.planner,
            ...(opts.scenarios === undefined ? {} : { scenariosFile: opts.scenarios }),
            ...(opts.heldOut === undefined ? {} : { heldOutFiles: opts.heldOut }),
            showHeldOut: opts.showHeldOut === true,
            ...(chatModel === undefined ? {} : { chatModel }),
            verbose: opts.verbose === true,
          });
          if (!result.passed) process.exitCode = 1;
        } finally {
          await server?.close();
        }
      },
    ),
  );

program
  .command('bench')
  .description('run every benchmark in bench/ and write bench/results.json')
  .addOption(
    new Option(
      '--filter <text>',
      'only benchmarks whose file name contains one of these comma-separated words',
    ),
  )
  .action(async (opts: { filter?: string }) => {
    const { runAllBenchmarks } = await import('../bench/run-all.js');
    await runAllBenchmarks(opts.filter);
  });

program
  .command('soak')
  .description(
    'chaos soak: two serve instances, gpu- and edge-runners on MariaDB, Redis and RabbitMQ, killed at random; checks invariants, records bench/results.json',
  )
  .requiredOption('--minutes <n>', 'minutes of chaos (the settle period and the checks come after)')
  .option('--kill-min-s <s>', 'shortest wait between two kills', '20')
  .option('--kill-max-s <s>', 'longest wait between two kills', '60')
  .option('--rabbit-stop-s <s>', "seconds RabbitMQ's app stays stopped, once per run (0: never)", '10')
  .option(
    '--force-rabbit-stop',
    'stop RabbitMQ even while other test runs (vitest) on this machine use it (by default the stop waits for them)',
  )
  .option('--settle-s <s>', 'longest wait for work in flight to end after the chaos', '180')
  .option('--no-record', 'do not write bench/results.json and the README table')
  .option('--keep', 'keep the database, streams and logs (always kept when an invariant fails)')
  .action(
    async (opts: {
      minutes: string;
      killMinS: string;
      killMaxS: string;
      rabbitStopS: string;
      settleS: string;
      record: boolean;
      keep?: boolean;
      forceRabbitStop?: boolean;
    }) => {
      const { runSoak } = await import('../bench/soak.js');
      try {
        const { violations } = await runSoak({
          minutes: Number(opts.minutes),
          killMinS: Number(opts.killMinS),
          killMaxS: Number(opts.killMaxS),
          rabbitStopS: Number(opts.rabbitStopS),
          settleS: Number(opts.settleS),
          record: opts.record,
          keep: opts.keep === true,
          forceRabbitStop: opts.forceRabbitStop === true,
        });
        process.exitCode = violations === 0 ? 0 : EXIT_FAILED;
      } catch (err) {
        fail(err);
      }
    },
  );

await program.parseAsync(process.argv);
