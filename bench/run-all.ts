import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';

/** What each `bench/*.bench.ts` module's `run()` returns. */
export interface BenchReport {
  name: string;
  results: Array<{ label: string; value: number; unit: string }>;
  ratios: Array<{ label: string; value: number; target?: string }>;
  notes?: string[];
}

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(BENCH_DIR, 'results.json');
const README = path.join(BENCH_DIR, '..', 'README.md');
const TABLE_START = '<!-- bench-table:start (written by `npm run bench` from bench/results.json) -->';
const TABLE_END = '<!-- bench-table:end -->';

const machineSchema = z.object({
  cpus: z.number(),
  cpuModel: z.string(),
  memoryGiB: z.number(),
  node: z.string(),
  platform: z.string(),
});
const entrySchema = z.object({
  file: z.string(),
  ranAt: z.string(),
  seconds: z.number(),
  loadAverageBefore: z.number(),
  machine: machineSchema,
  report: z.object({
    name: z.string(),
    results: z.array(z.object({ label: z.string(), value: z.number(), unit: z.string() })),
    ratios: z.array(z.object({ label: z.string(), value: z.number(), target: z.string().optional() })),
    notes: z.array(z.string()).optional(),
  }),
});
const resultsSchema = z.object({ benchmarks: z.array(entrySchema) });
type Entry = z.infer<typeof entrySchema>;

function machine(): Entry['machine'] {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
  };
}

/** The benchmarks recorded so far (none when the file is missing); a file that does not parse is an error, never silently dropped. */
async function readResults(): Promise<Entry[]> {
  if (!existsSync(RESULTS)) return [];
  const parsed = resultsSchema.safeParse(JSON.parse(await readFile(RESULTS, 'utf8')));
  if (!parsed.success)
    throw new Error(
      `bench/results.json does not match the expected format (${parsed.error.issues[0]?.message ?? 'invalid'}); fix or delete it`,
    );
  return parsed.data.benchmarks;
}

/**
 * Runs every benchmark (or those whose file name contains one of the comma-separated `filter` words),
 * prints them, records each in bench/results.json (replacing that benchmark's previous entry, so a
 * filtered run keeps the others) and rewrites the README's performance table from the file.
 */
export async function runAllBenchmarks(filter?: string): Promise<BenchReport[]> {
  const words =
    filter
      ?.split(',')
      .map((w) => w.trim())
      .filter(Boolean) ?? [];
  const files = (await readdir(BENCH_DIR))
    .filter((f) => f.endsWith('.bench.ts') && (words.length === 0 || words.some((w) => f.includes(w))))
    .sort();
  const reports: BenchReport[] = [];
  let failed = 0;
  const short: string[] = [];
  for (const file of files) {
    process.stdout.write(
      `\n# ${file} (load average ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} cores)\n`,
    );
    const mod = (await import(pathToFileURL(path.join(BENCH_DIR, file)).href)) as {
      run?: () => Promise<BenchReport>;
    };
    if (typeof mod.run !== 'function') {
      process.stdout.write(`  (no run() export, skipped)\n`);
      continue;
    }
    const loadAverageBefore = Number(os.loadavg()[0]!.toFixed(2));
    const started = Date.now();
    try {
      const report = entrySchema.shape.report.parse(await mod.run());
      reports.push(report);
      for (const r of report.results)
        process.stdout.write(`  ${r.label}: ${formatNumber(r.value)} ${r.unit}\n`);
      for (const r of report.ratios) process.stdout.write(`  ratio ${r.label}: ${targetText(r, false)}\n`);
      short.push(...missedTargets(file, report));
      const entry: Entry = {
        file,
        ranAt: new Date().toISOString(),
        seconds: Math.round((Date.now() - started) / 1000),
        loadAverageBefore,
        machine: machine(),
        report,
      };
      const recorded = (await readResults()).filter((e) => e.file !== file);
      await writeFile(
        RESULTS,
        `${JSON.stringify({ benchmarks: [...recorded, entry].sort((a, b) => a.file.localeCompare(b.file)) }, null, 2)}\n`,
      );
    } catch (err) {
      failed++;
      process.stdout.write(`  FAILED: ${(err as Error).message}\n`);
    }
  }
  await updateReadme(await readResults());
  if (short.length > 0)
    process.stdout.write(
      `\n✗ ${short.length} target(s) not met:\n${short.map((s) => `  ✗ ${s}`).join('\n')}\n`,
    );
  else if (failed === 0) process.stdout.write(`\n✓ every target met (${reports.length} benchmarks)\n`);
  if (failed > 0) process.stdout.write(`\n${failed} benchmark(s) failed to run\n`);
  if (failed > 0 || short.length > 0) process.exitCode = 1;
  return reports;
}

/**
 * Records one run of a figure-producing command that is not a `*.bench.ts` module (e.g. the soak,
 * `npm run soak`) in bench/results.json under `file`, replacing its previous entry, and rewrites the
 * README table from the file.
 */
export async function recordBenchmark(
  file: string,
  report: BenchReport,
  startedAt: number,
  loadAverageBefore: number,
): Promise<void> {
  const entry: Entry = {
    file,
    ranAt: new Date().toISOString(),
    seconds: Math.round((Date.now() - startedAt) / 1000),
    loadAverageBefore,
    machine: machine(),
    report: entrySchema.shape.report.parse(report),
  };
  const recorded = (await readResults()).filter((e) => e.file !== file);
  await writeFile(
    RESULTS,
    `${JSON.stringify({ benchmarks: [...recorded, entry].sort((a, b) => a.file.localeCompare(b.file)) }, null, 2)}\n`,
  );
  await updateReadme(await readResults());
}

/** The README's performance table: one row per figure, with the benchmark's ratios, machine and time. */
export function renderTable(entries: Entry[]): string {
  const rows = ['| benchmark | figures | ratio to its baseline (same run) | ran |', '|---|---|---|---|'];
  for (const e of entries) {
    const figures = e.report.results
      .map((r) => `${r.label}: **${formatNumber(r.value)}** ${r.unit}`)
      .join('<br>');
    const ratios = e.report.ratios.map((r) => `${r.label}: ${targetText(r, true)}`).join('<br>') || '—';
    const ran = `${e.ranAt.slice(0, 16).replace('T', ' ')} UTC, ${e.seconds} s, load ${e.loadAverageBefore} before`;
    rows.push(`| \`${e.file}\` | ${figures} | ${ratios} | ${ran} |`);
  }
  const machines = [
    ...new Set(
      entries.map(
        (e) =>
          `${e.machine.cpus} × ${e.machine.cpuModel}, ${e.machine.memoryGiB} GiB, Node ${e.machine.node}, ${e.machine.platform}`,
      ),
    ),
  ];
  return [`Machine: ${machines.join('; ') || 'no benchmark recorded yet'}.`, '', ...rows].join('\n');
}

async function updateReadme(entries: Entry[]): Promise<void> {
  const readme = await readFile(README, 'utf8');
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) {
    process.stdout.write(
      `\nREADME.md has no ${TABLE_START} … ${TABLE_END} markers; the table was not written\n`,
    );
    return;
  }
  await writeFile(
    README,
    `${readme.slice(0, start + TABLE_START.length)}\n${renderTable(entries)}\n${readme.slice(end)}`,
  );
  process.stdout.write(
    `\nREADME.md performance table rewritten from bench/results.json (${entries.length} benchmarks)\n`,
  );
}

const TARGET = /^\s*(≤|<=|≥|>=|=|<|>)\s*(-?[\d.]+)\s*$/;

/**
 * Whether a ratio meets its target (`≤ 5`, `>= 0.9`, `= 0`, …): `undefined` when the ratio has no
 * target (informational); a target that does not parse is an error, so a typo cannot pass silently.
 */
export function meetsTarget(value: number, target: string | undefined): boolean | undefined {
  if (target === undefined) return undefined;
  const m = TARGET.exec(target);
  if (m === null) throw new Error(`target "${target}" is not one of ≤ N, >= N, = N, < N, > N`);
  const bound = Number(m[2]);
  if (!Number.isFinite(value)) return false;
  switch (m[1]) {
    case '≤':
    case '<=':
      return value <= bound;
    case '≥':
    case '>=':
      return value >= bound;
    case '<':
      return value < bound;
    case '>':
      return value > bound;
    default:
      return value === bound;
  }
}

/** One line per ratio of `report` that falls short of its target. */
export function missedTargets(file: string, report: BenchReport): string[] {
  return report.ratios
    .filter((r) => meetsTarget(r.value, r.target) === false)
    .map((r) => `${file}: ${r.label} = ${formatNumber(r.value)} (target ${r.target})`);
}

function targetText(r: { value: number; target?: string | undefined }, bold: boolean): string {
  const v = bold ? `**${formatNumber(r.value)}**` : formatNumber(r.value);
  const met = meetsTarget(r.value, r.target);
  return met === undefined ? v : `${v} ${met ? '✓' : '✗'} (target ${r.target})`;
}

function formatNumber(n: number): string {
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(Math.abs(n) >= 1 ? 2 : 3);
}
