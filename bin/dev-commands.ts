import { Option, type Command } from 'commander';
import { action, EXIT_FAILED, fail } from './cli-support.js';

/** The commands that measure the platform: `eval`, `bench` and `soak`. */
export async function registerDevCommands(program: Command): Promise<void> {
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
      'held-out scenario files, JSONL (default evals/heldout-4.jsonl; the seen-N files are scored like dev)',
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
}
