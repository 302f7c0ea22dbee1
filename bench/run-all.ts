import { readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What each `bench/*.bench.ts` module's `run()` returns. */
export interface BenchReport {
  name: string;
  results: Array<{ label: string; value: number; unit: string }>;
  ratios: Array<{ label: string; value: number; target?: string }>;
  notes?: string[];
}

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * Runs every benchmark (or those whose file name contains one of the comma-separated `filter` words),
 * prints them and writes bench/results.json.
 */
export async function runAllBenchmarks(filter?: string): Promise<BenchReport[]> {
  const words = filter?.split(',').map((w) => w.trim()).filter(Boolean) ?? [];
  const files = (await readdir(BENCH_DIR))
    .filter((f) => f.endsWith('.bench.ts') && (words.length === 0 || words.some((w) => f.includes(w))))
    .sort();
  const reports: BenchReport[] = [];
  for (const file of files) {
    process.stdout.write(`\n# ${file}\n`);
    const mod = (await import(pathToFileURL(path.join(BENCH_DIR, file)).href)) as { run?: () => Promise<BenchReport> };
    if (typeof mod.run !== 'function') {
      process.stdout.write(`  (no run() export, skipped)\n`);
      continue;
    }
    try {
      const report = await mod.run();
      reports.push(report);
      for (const r of report.results) process.stdout.write(`  ${r.label}: ${formatNumber(r.value)} ${r.unit}\n`);
      for (const r of report.ratios)
        process.stdout.write(`  ratio ${r.label}: ${formatNumber(r.value)}${r.target ? ` (target ${r.target})` : ''}\n`);
    } catch (err) {
      process.stdout.write(`  FAILED: ${(err as Error).message}\n`);
      reports.push({ name: file, results: [], ratios: [], notes: [`failed: ${(err as Error).message}`] });
    }
  }
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
  };
  await writeFile(
    path.join(BENCH_DIR, 'results.json'),
    `${JSON.stringify({ ranAt: new Date().toISOString(), machine, reports }, null, 2)}\n`,
  );
  return reports;
}

function formatNumber(n: number): string {
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(Math.abs(n) >= 1 ? 2 : 3);
}
