import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { io as connect, type Socket } from 'socket.io-client';
import { startTestServer } from '../web-chat/server.fixtures.js';
import type { BenchReport } from './run-all.js';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  errors: number;
  non2xx: number;
}
type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  headers?: Record<string, string>;
}) => Promise<AutocannonResult>;

const require = createRequire(import.meta.url);
const autocannon = require('autocannon') as Autocannon;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One socket client sending read-only chat requests back to back until `until`; returns each round trip in ms. */
async function chatLoop(url: string, cookie: string, until: number): Promise<number[]> {
  const socket: Socket = connect(url, {
    transports: ['websocket'],
    extraHeaders: { cookie },
    reconnection: false,
    forceNew: true,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  const times: number[] = [];
  let waiting: { threadId?: string; done: () => void } | undefined;
  socket.on('agent', (e: { type: string; threadId: string }) => {
    if (
      e.type === 'agent.report' &&
      waiting &&
      (waiting.threadId === undefined || waiting.threadId === e.threadId)
    )
      waiting.done();
  });
  while (Date.now() < until) {
    const started = performance.now();
    const done = new Promise<void>((resolve) => (waiting = { done: resolve }));
    const ack = (await socket.emitWithAck('chat:send', { message: 'list datasets' })) as {
      ok: boolean;
      threadId?: string;
      error?: { message: string };
    };
    if (!ack.ok) throw new Error(`chat:send refused: ${ack.error?.message}`);
    waiting!.threadId = ack.threadId;
    await done;
    times.push(performance.now() - started);
  }
  socket.close();
  return times;
}

/** REST read throughput and socket chat round trips with 50 concurrent clients against an embedded server. */
export async function run(
  opts: { connections?: number; seconds?: number; print?: boolean } = {},
): Promise<BenchReport> {
  const connections = opts.connections ?? 50;
  const seconds = opts.seconds ?? 5;
  const say = (line: string) => opts.print && console.log(line);
  const t = await startTestServer({ web: { rateLimits: { api: 1_000_000_000, login: 1000 } } });
  try {
    const operator = await t.login('operator');
    const { token } = (await (
      await operator.fetch('/api/tokens', {
        method: 'POST',
        json: { name: 'bench', role: 'viewer', scopes: ['api'] },
      })
    ).json()) as { token: string };
    say(
      `web benchmark: ${connections} concurrent clients, ${seconds} s per run; load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores`,
    );

    const rest = await autocannon({
      url: `${t.url}/api/approvals?status=pending&limit=20`,
      connections,
      duration: seconds,
      headers: { authorization: `Bearer ${token}` },
    });
    if (rest.errors > 0 || rest.non2xx > 0)
      throw new Error(`REST run had ${rest.errors} errors and ${rest.non2xx} non-2xx answers`);
    say(
      `REST GET /api/approvals (bearer token): ${Math.round(rest.requests.average)} req/s, p50 ${rest.latency.p50} ms, p99 ${rest.latency.p99} ms`,
    );
    // Baseline in the same run: the same server's cheapest route (no auth, no database), i.e. express + helmet + logging alone.
    const floor = await autocannon({ url: `${t.url}/healthz`, connections, duration: seconds });
    if (floor.errors > 0 || floor.non2xx > 0)
      throw new Error(`baseline run had ${floor.errors} errors and ${floor.non2xx} non-2xx answers`);
    say(`baseline GET /healthz: ${Math.round(floor.requests.average)} req/s, p50 ${floor.latency.p50} ms`);

    const until = Date.now() + seconds * 1000;
    const started = performance.now();
    const all = (
      await Promise.all(Array.from({ length: connections }, () => chatLoop(t.url, operator.cookie, until)))
    )
      .flat()
      .sort((a, b) => a - b);
    const wall = (performance.now() - started) / 1000;
    const chatRate = all.length / wall;
    say(
      `socket chat round trip ("list datasets" → agent.report): ${chatRate.toFixed(1)} req/s, p50 ${percentile(all, 50).toFixed(1)} ms, p99 ${percentile(all, 99).toFixed(1)} ms`,
    );
    await t.agent.settled();
    return {
      name: 'web',
      results: [
        {
          label: 'REST read (GET /api/approvals, 50 clients)',
          value: Math.round(rest.requests.average),
          unit: 'req/s',
        },
        { label: 'REST read p50', value: rest.latency.p50, unit: 'ms' },
        { label: 'REST read p99', value: rest.latency.p99, unit: 'ms' },
        {
          label: 'baseline GET /healthz (same server, 50 clients)',
          value: Math.round(floor.requests.average),
          unit: 'req/s',
        },
        {
          label: 'socket read-only chat round trip (50 clients)',
          value: Number(chatRate.toFixed(1)),
          unit: 'req/s',
        },
        { label: 'socket chat round trip p50', value: Number(percentile(all, 50).toFixed(1)), unit: 'ms' },
        { label: 'socket chat round trip p99', value: Number(percentile(all, 99).toFixed(1)), unit: 'ms' },
      ],
      ratios: [
        {
          label: 'REST read req/s / GET /healthz req/s',
          value: Number((rest.requests.average / floor.requests.average).toFixed(3)),
          target: '≥ 0.5',
        },
        {
          label: 'socket read-only chat round trip p50 at 50 clients (ms)',
          value: Number(percentile(all, 50).toFixed(1)),
          target: '≤ 100',
        },
      ],
      notes: [
        'embedded SQLite platform, rules planner, one server process; the chat request plans, runs list_datasets, checkpoints and reports',
      ],
    };
  } finally {
    await t.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const report = await run({ print: true });
  console.log(JSON.stringify(report, null, 2));
}
