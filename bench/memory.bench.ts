import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { BenchReport } from './run-all.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(BENCH_DIR, '..', 'bin', 'visioninapp.js');
const EDGE_TARGET_MB = 250;

const stageSchema = z.object({
  rss: z.number(),
  heapUsed: z.number(),
  external: z.number(),
  arrayBuffers: z.number(),
});
const edgeSchema = z.object({
  afterImports: stageSchema,
  runnerStarted: stageSchema,
  modelLoaded: stageSchema,
  serving: stageSchema,
  frames: z.number(),
  modelBytes: z.number(),
  peakRss: z.number(),
});

/** Resident memory of a process in MB, from /proc (Linux). */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) / 1024;
}

function launch(cmd: string, args: string[], env: Record<string, string | undefined>): ChildProcess {
  return spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function output(child: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${child.spawnargs.join(' ')} exited ${code}: ${err.slice(-800)}`);
  return out;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not happen within ${ms / 1000} s`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const noServices = {
  DATABASE_URL: undefined,
  REDIS_URL: undefined,
  RABBITMQ_STREAM_URL: undefined,
  ELASTICSEARCH_URL: undefined,
  S3_BUCKET: undefined,
  LOG_LEVEL: 'silent',
};

/** `visioninapp serve` (embedded, no simulated devices or GPU runner) idle, then under 50 clients on REST for a few seconds. */
async function serveMemory(dir: string): Promise<{ idle: number; underLoad: number }> {
  const port = await freePort();
  const child = launch(process.execPath, [CLI, 'serve'], {
    ...noServices,
    DATA_DIR: path.join(dir, 'serve'),
    PORT: String(port),
    EMBEDDED_GPU_RUNNER: 'false',
    SIMULATED_DEVICES: '0',
    DEMO_DATASET: 'false',
  });
  const exited = output(child).catch(() => '');
  try {
    const base = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${base}/healthz`)).ok, 120_000, 'serve answering /healthz');
    await sleep(3000);
    const idle = rssOf(child.pid!);
    const { createRequire } = await import('node:module');
    const autocannon = createRequire(import.meta.url)('autocannon') as (o: {
      url: string;
      connections: number;
      duration: number;
    }) => Promise<unknown>;
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(child.pid!))), 200);
    // the routes every page polls: the health check and the (refused, unauthenticated) API, 50 clients each
    await Promise.all([
      autocannon({ url: `${base}/healthz`, connections: 50, duration: 5 }),
      autocannon({ url: `${base}/api/approvals`, connections: 50, duration: 5 }),
    ]);
    clearInterval(sampler);
    return { idle, underLoad: peak };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** `visioninapp gpu-runner --backends builtin` idle (in-process broker: waiting for work). */
async function gpuRunnerMemory(dir: string): Promise<number> {
  const child = launch(process.execPath, [CLI, 'gpu-runner', '--backends', 'builtin'], {
    ...noServices,
    DATA_DIR: path.join(dir, 'gpu'),
  });
  const exited = output(child).catch(() => '');
  try {
    await sleep(8000);
    if (child.exitCode !== null) throw new Error(`gpu-runner exited ${child.exitCode}`);
    return rssOf(child.pid!);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** Resident memory of the processes a deployment runs: serve, an edge runner serving the built-in model, a GPU runner idle. */
export async function run(): Promise<BenchReport> {
  if (!existsSync('/proc/self/status')) throw new Error('memory.bench.ts reads /proc (Linux only)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vbench-memory-'));
  try {
    const rssPrinted = 'process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss / 2 ** 20 }))';
    const reference = async (args: string[]) =>
      z.object({ rss: z.number() }).parse(JSON.parse(await output(launch(process.execPath, args, {})))).rss;
    const bare = await reference(['-e', rssPrinted]);
    const withTsx = await reference(['--import', 'tsx', '-e', rssPrinted]);
    const withSharp = await reference(['--input-type=module', '-e', `await import('sharp'); ${rssPrinted}`]);
    const withOrt = await reference([
      '--input-type=module',
      '-e',
      `await import('onnxruntime-node'); ${rssPrinted}`,
    ]);
    const edge = edgeSchema.parse(
      JSON.parse(
        (
          await output(
            launch(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, 'memory-edge-child.ts')], {
              LOG_LEVEL: 'silent',
            }),
          )
        )
          .trim()
          .split('\n')
          .at(-1)!,
      ),
    );
    const gpu = await gpuRunnerMemory(dir);
    const serve = await serveMemory(dir);
    const dominant = [
      { what: 'Node.js, tsx and the runner modules', mb: edge.afterImports.rss },
      {
        what: 'runner start-up (broker, device API, sources)',
        mb: edge.runnerStarted.rss - edge.afterImports.rss,
      },
      { what: 'onnxruntime session with the model', mb: edge.modelLoaded.rss - edge.runnerStarted.rss },
      { what: 'serving frames (tensors, buffers)', mb: edge.peakRss - edge.modelLoaded.rss },
    ].sort((a, b) => b.mb - a.mb);
    return {
      name: 'memory',
      results: [
        { label: 'bare node process (reference)', value: bare, unit: 'MB RSS' },
        {
          label: 'node with the tsx loader (reference; every visioninapp process runs TypeScript through it)',
          value: withTsx,
          unit: 'MB RSS',
        },
        { label: 'node with sharp (libvips) loaded (reference)', value: withSharp, unit: 'MB RSS' },
        {
          label: 'node with onnxruntime-node loaded, no session (reference)',
          value: withOrt,
          unit: 'MB RSS',
        },
        {
          label: 'serve idle (embedded, no simulated devices, no GPU runner)',
          value: serve.idle,
          unit: 'MB RSS',
        },
        { label: 'serve peak under 100 clients for 5 s (REST)', value: serve.underLoad, unit: 'MB RSS' },
        {
          label: 'edge runner serving the built-in model at 320 (peak)',
          value: edge.peakRss,
          unit: 'MB RSS',
        },
        { label: 'edge runner: after imports', value: edge.afterImports.rss, unit: 'MB RSS' },
        { label: 'edge runner: started, no model', value: edge.runnerStarted.rss, unit: 'MB RSS' },
        { label: 'edge runner: model loaded', value: edge.modelLoaded.rss, unit: 'MB RSS' },
        { label: 'edge runner: serving, JS heap used', value: edge.serving.heapUsed, unit: 'MB' },
        {
          label: 'edge runner: serving, external (native buffers)',
          value: edge.serving.external,
          unit: 'MB',
        },
        { label: 'GPU runner idle (builtin backend)', value: gpu, unit: 'MB RSS' },
      ],
      ratios: [{ label: 'edge runner peak RSS (MB)', value: edge.peakRss, target: `≤ ${EDGE_TARGET_MB}` }],
      notes: [
        `edge runner: its imports are node ${bare.toFixed(0)} MB + tsx loader ${(withTsx - bare).toFixed(0)} MB + sharp/libvips ${(withSharp - bare).toFixed(0)} MB + onnxruntime library ${(withOrt - bare).toFixed(0)} MB + our modules; what dominates its peak: ${dominant.map((d) => `${d.what} ${d.mb.toFixed(0)} MB`).join(', ')}; ${edge.frames} frames served, model ${(edge.modelBytes / 2 ** 20).toFixed(1)} MB; the child also runs the small embedded platform (in-process broker, storage) the device talks to`,
        `load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores at the end`,
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const report = await run();
  console.log(JSON.stringify(report, null, 2));
}
