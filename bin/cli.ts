import { Command, Option } from 'commander';
import { registerAdminCommands, withPlatform } from './admin-commands.js';
import { action, config, fail } from './cli-support.js';
import { registerDevCommands } from './dev-commands.js';
import { registerModelCommands } from './model-commands.js';
import { registerWorkerCommands } from './worker-commands.js';

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
        const { createMcpToken } = await import('../mcp-server/index.js');
        const days = Number(opts.days);
        if (!Number.isFinite(days) || days <= 0)
          throw new Error(`--days must be a positive number of days; got "${opts.days}"`);
        await withPlatform(cfg, log.child({ level: 'warn' }), async (platform) => {
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
        });
      },
    ),
  );

await registerWorkerCommands(program);
await registerModelCommands(program);
await registerDevCommands(program);

await program.parseAsync(process.argv);
