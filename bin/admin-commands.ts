import path from 'node:path';
import { Command, Option } from 'commander';
import type { Config } from '../app/config.js';
import { systemPrincipal, type CallContext } from '../core/context.js';
import type { Logger } from '../core/log.js';
import { createPlatform, type Platform } from '../app/platform.js';
import { progressLine } from './progress.js';

type Runner = <A extends unknown[]>(
  body: (cfg: Config, log: Logger, ...args: A) => Promise<void>,
) => (...args: A) => Promise<void>;

/** Opens the configured platform (migrated, no loops) for one command, then closes it. */
export async function withPlatform<T>(
  cfg: Config,
  log: Logger,
  fn: (p: Platform, ctx: CallContext) => Promise<T>,
): Promise<T> {
  const platform = await createPlatform(cfg, log);
  try {
    await platform.prepare();
    const ctx: CallContext = {
      user: systemPrincipal(),
      projectId: 'default',
      requestId: `cli-${process.pid}`,
      log,
    };
    return await fn(platform, ctx);
  } finally {
    await platform.close();
  }
}

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : text()}\n`);
}

/** `datasets`, `models`, `devices`, `audit`, `reindex`: scripting the platform against its configured database. */
export function registerAdminCommands(program: Command, action: Runner): void {
  const datasets = program.command('datasets').description('import and inspect datasets');
  datasets
    .command('import')
    .description('import a dataset folder or zip (YOLO, COCO or Pascal VOC) as a new version')
    .argument('<path>', 'folder or .zip file')
    .requiredOption('--name <name>', 'dataset name, e.g. helmets-v2')
    .addOption(
      new Option('--format <format>', 'source format (detected when omitted)').choices([
        'yolo',
        'coco',
        'voc',
      ]),
    )
    .option('--description <text>', 'what the dataset contains')
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          cfg,
          log,
          source: string,
          opts: { name: string; format?: 'yolo' | 'coco' | 'voc'; description?: string; json?: boolean },
        ) => {
          await withPlatform(cfg, log.child({ level: 'warn' }), async (p, ctx) => {
            const bar = progressLine(`importing ${opts.name}`);
            const abs = path.resolve(source);
            const result = await p.datasets.import(
              ctx,
              {
                name: opts.name,
                source: abs.toLowerCase().endsWith('.zip')
                  ? { kind: 'zip', path: abs }
                  : { kind: 'folder', path: abs },
                ...(opts.format === undefined ? {} : { format: opts.format }),
                ...(opts.description === undefined ? {} : { description: opts.description }),
              },
              (prog) => bar.update(prog.done, prog.total, prog.phase),
            );
            bar.done();
            const { formatReport } = await import('../services/datasets/index.js');
            print(
              opts.json === true,
              result,
              () => `${result.version.ref} created\n${formatReport(result.report)}`,
            );
          });
        },
      ),
    );
  datasets
    .command('list')
    .description('list datasets with their latest version')
    .option('--json', 'print JSON')
    .action(
      action(async (cfg, log, opts: { json?: boolean }) => {
        await withPlatform(cfg, log, async (p, ctx) => {
          const rows = await p.datasets.list(ctx);
          print(opts.json === true, rows, () =>
            rows.length === 0
              ? 'no datasets yet; import one with: visioninapp datasets import PATH --name NAME'
              : rows
                  .map(
                    (d) =>
                      `${d.name}@${d.latestVersion}\t${d.images} images\t${d.boxes} boxes\t${d.classNames.join(', ')}`,
                  )
                  .join('\n'),
          );
        });
      }),
    );
  datasets
    .command('show')
    .description('show one dataset version (NAME or NAME@VERSION) with its statistics')
    .argument('<ref>')
    .option('--json', 'print JSON')
    .action(
      action(async (cfg, log, ref: string, opts: { json?: boolean }) => {
        await withPlatform(cfg, log, async (p, ctx) => {
          const v = await p.datasets.get(ctx, ref);
          print(opts.json === true, v, () =>
            [
              `${v.ref} (latest ${v.latestVersion})${v.description ? ` — ${v.description}` : ''}`,
              `classes: ${v.classNames.join(', ')}`,
              `images: ${v.stats.images} (${Object.entries(v.stats.splits)
                .map(([k, x]) => `${k} ${x.images}`)
                .join(', ')}; split by ${v.stats.splitMode}), ${v.stats.backgroundImages} without boxes`,
              `boxes per class: ${v.stats.classes.map((c) => `${c.name} ${c.boxes}`).join(', ')}`,
            ].join('\n'),
          );
        });
      }),
    );

  program
    .command('models')
    .description('model versions')
    .command('list')
    .description('list model versions with their stages and mAP')
    .option('--name <name>', 'only this model')
    .option('--json', 'print JSON')
    .action(
      action(async (cfg, log, opts: { name?: string; json?: boolean }) => {
        await withPlatform(cfg, log, async (p, ctx) => {
          const rows = await p.models.list(ctx, opts.name === undefined ? {} : { name: opts.name });
          print(opts.json === true, rows, () =>
            rows.length === 0
              ? 'no model versions yet; train one from the chat ("train a helmet detector on dataset helmets-demo")'
              : rows
                  .map(
                    (m) =>
                      `${m.ref}\t${m.stages.join(',') || '-'}\tmAP50 ${m.metrics.mAP50?.toFixed(3) ?? '?'}\t${m.lineage.dataset ?? ''}`,
                  )
                  .join('\n'),
          );
        });
      }),
    );

  program
    .command('devices')
    .description('edge devices')
    .command('list')
    .description('list devices with their model version, health and last heartbeat')
    .option('--tag <tag>', 'only devices with this tag, e.g. line-3')
    .option('--json', 'print JSON')
    .action(
      action(async (cfg, log, opts: { tag?: string; json?: boolean }) => {
        await withPlatform(cfg, log, async (p, ctx) => {
          const rows = await p.fleet.list(ctx, opts.tag === undefined ? {} : { tag: opts.tag });
          const ago = (t: number) => `${Math.round((Date.now() - t) / 1000)}s ago`;
          print(opts.json === true, rows, () =>
            rows.length === 0
              ? `no devices${opts.tag ? ` tagged ${opts.tag}` : ''}; start one with: visioninapp edge-runner --help`
              : rows
                  .map(
                    (d) =>
                      `${d.id}\t${d.tags.join(',')}\t${d.state}\t${d.modelVersionId ?? 'no model'}\t${d.health.status}\t${ago(d.lastHeartbeatAt)}`,
                  )
                  .join('\n'),
          );
        });
      }),
    );

  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description(
      'check that no audit entry was edited, removed, reordered or truncated (signed head, checkpoints, anchor file)',
    )
    .option('--json', 'print JSON')
    .option('--since-checkpoint', 'recompute only the entries after the latest signed checkpoint (fast)')
    .action(
      action(async (cfg, log, opts: { json?: boolean; sinceCheckpoint?: boolean }) => {
        await withPlatform(cfg, log, async (p) => {
          const result = await p.audit.verify(undefined, { sinceCheckpoint: opts.sinceCheckpoint === true });
          print(opts.json === true, result, () =>
            result.ok
              ? `audit chain intact: ${result.checked} entries checked${opts.sinceCheckpoint === true ? ' since the latest checkpoint' : ''}, ${result.checkpoints} signed checkpoints, ${result.anchored} projects anchored`
              : `audit chain BROKEN (${result.problems.length} problems):\n${result.problems.map((x) => `  seq ${x.seq}: ${x.kind} — ${x.detail}`).join('\n')}`,
          );
          if (!result.ok) process.exitCode = 1;
        });
      }),
    );

  program
    .command('reindex')
    .description('rebuild the search index from the database')
    .action(
      action(async (cfg, log) => {
        await withPlatform(cfg, log, async (p) => {
          const n = await p.reindex();
          process.stdout.write(`reindexed ${n} documents\n`);
        });
      }),
    );
}
