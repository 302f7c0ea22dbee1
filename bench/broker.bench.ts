import { pathToFileURL } from 'node:url';
import net from 'node:net';
import { cpus, loadavg } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connect, Offset } from 'rabbitmq-stream-js-client';
import { creditsOnChunkCompleted } from 'rabbitmq-stream-js-client/dist/consumer_credit_policy.js';
import { silentLogger } from '../core/log.js';
import { makeEnvelope } from '../protocol/envelope.js';
import { MemoryBroker } from '../services/infra/broker/memory.js';
import { STREAMS, type Broker } from '../services/infra/broker/port.js';
import { RabbitBroker } from '../services/infra/broker/rabbitmq.js';

/** One measured figure. */
export interface BenchResult {
  label: string;
  value: number;
  unit: string;
}

/** What `run()` returns for the `npm run bench` collector (run-all's BenchReport, with notes always present). */
export interface BenchReport {
  name: string;
  results: BenchResult[];
  ratios: Array<{ label: string; value: number; target: string }>;
  notes: string[];
}

const URL_ENV = 'RABBITMQ_STREAM_URL';
const DEFAULT_URL = 'rabbitmq-stream://guest:guest@127.0.0.1:5552/';
/** Chunks in flight for the raw consumer, as the port's consumers use. */
const CREDITS = 10;

/** Telemetry envelopes as runners send them: train.metrics with a realistic metrics record, each with its own id. */
function envelopes(count: number) {
  const base = makeEnvelope(
    'train.metrics',
    {
      jobId: 'job_bench',
      attempt: 1,
      epoch: 3,
      epochs: 100,
      kind: 'progress',
      batch: 0,
      batches: 500,
      metrics: { box_loss: 1.234, cls_loss: 0.876, dfl_loss: 1.012, lr: 0.00995, seconds: 0.21 },
    },
    { source: 'runner-bench' },
  );
  return Array.from({ length: count }, (_, i) => ({
    ...base,
    id: `${base.id}-${i}`,
    payload: { ...base.payload, batch: i % 500 },
  }));
}

/** Throughput of one run: wall-clock, and per CPU-second of this process (steadier on a busy machine). */
interface Rate {
  wall: number;
  cpu: number;
}

async function timed(count: number, work: () => Promise<void>): Promise<Rate> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wall: count / seconds, cpu: count / ((cpu.user + cpu.system) / 1e6) };
}

async function throughPort(broker: Broker, count: number): Promise<Rate> {
  const batch = envelopes(count);
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await broker.subscribe(STREAMS.telemetry, { from: 'next' }, () => {
    if (++received === count) done();
  });
  const rate = await timed(count, async () => {
    await Promise.all(batch.map((env) => broker.publish(STREAMS.telemetry, env)));
    await finished;
  });
  await sub.close();
  return rate;
}

function rawConnect(url: string) {
  const u = new URL(url);
  return connect({
    hostname: u.hostname,
    port: Number(u.port || 5552),
    username: decodeURIComponent(u.username || 'guest'),
    password: decodeURIComponent(u.password || 'guest'),
    vhost: '/',
  });
}

async function throughRawClient(url: string, stream: string, count: number): Promise<Rate> {
  const client = await rawConnect(url);
  const batch = envelopes(count);
  try {
    await client.createStream({ stream, arguments: {} });
    let received = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const consumer = await client.declareConsumer(
      { stream, offset: Offset.next(), creditPolicy: creditsOnChunkCompleted(CREDITS, 1) },
      () => {
        if (++received === count) done();
      },
    );
    const publisher = await client.declarePublisher({
      stream,
      publisherRef: `raw-bench-${randomBytes(3).toString('hex')}`,
    });
    let confirmed = 0;
    let allConfirmed!: () => void;
    const confirmedAll = new Promise<void>((r) => (allConfirmed = r));
    publisher.on('publish_confirm', (_err, ids) => {
      confirmed += ids.length;
      if (confirmed >= count) allConfirmed();
    });
    // The same bytes the port sends: each envelope serialized with JSON.stringify, without validation.
    const rate = await timed(count, async () => {
      for (const env of batch) await publisher.send(Buffer.from(JSON.stringify(env)));
      await Promise.all([finished, confirmedAll]);
    });
    await publisher.close();
    await consumer.close();
    return rate;
  } finally {
    await bounded(client.deleteStream({ stream }));
    await bounded(client.close());
  }
}

function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port || 5552) });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1500, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

const best = (xs: Rate[]): Rate => ({
  wall: Math.max(...xs.map((x) => x.wall)),
  cpu: Math.max(...xs.map((x) => x.cpu)),
});
const fmt = (n: number) => Math.round(n).toLocaleString('en');

/** Waits for a cleanup step at most a few seconds; the client can hang on a socket the server already closed. */
function bounded(p: Promise<unknown>, ms = 3000): Promise<void> {
  return Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((r) => setTimeout(r, ms).unref()),
  ]);
}

/** Measures publish→consume throughput of validated telemetry envelopes: in-process broker, RabbitMQ port, raw client. */
export async function run(
  opts: { count?: number; rounds?: number; url?: string; print?: boolean } = {},
): Promise<BenchReport> {
  const count = opts.count ?? 50_000;
  const rounds = opts.rounds ?? 3;
  const url = opts.url ?? process.env[URL_ENV] ?? DEFAULT_URL;
  const print = opts.print ?? false;
  const say = (line: string) => print && console.log(line);
  const report: BenchReport = { name: 'broker', results: [], ratios: [], notes: [] };

  say(
    `broker benchmark: ${count.toLocaleString('en')} train.metrics envelopes per run, best of ${rounds}; load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores`,
  );
  const memoryRuns: Rate[] = [];
  for (let r = 0; r < rounds; r++) {
    const broker = new MemoryBroker({ log: silentLogger() });
    await throughPort(broker, Math.min(count, 20_000));
    memoryRuns.push(await throughPort(broker, count));
    await broker.close();
  }
  const memory = best(memoryRuns);
  report.results.push(
    { label: 'memory broker publish→consume', value: Math.round(memory.wall), unit: 'msgs/s' },
    {
      label: 'memory broker publish→consume per CPU-second',
      value: Math.round(memory.cpu),
      unit: 'msgs/cpu-s',
    },
  );
  report.ratios.push({
    label: 'memory broker / 100,000 msgs/s target',
    value: memory.wall / 100_000,
    target: '≥ 1',
  });
  say(`memory broker:  ${fmt(memory.wall)} msgs/s (${fmt(memory.cpu)} per CPU-second)`);

  if (!(await reachable(url))) {
    const note = `RabbitMQ streams not reachable at ${new URL(url).host} (${URL_ENV}); ran the in-process broker only`;
    report.notes.push(note);
    say(note);
    return report;
  }

  const portRuns: Rate[] = [];
  const rawRuns: Rate[] = [];
  for (let r = 0; r < rounds; r++) {
    const prefix = `bench-${randomBytes(4).toString('hex')}-`;
    rawRuns.push(await throughRawClient(url, `${prefix}raw`, count));
    const broker = new RabbitBroker({ url, log: silentLogger(), streamPrefix: prefix });
    portRuns.push(await throughPort(broker, count));
    await broker.close();
    const cleanup = await rawConnect(url);
    for (const s of Object.values(STREAMS)) await bounded(cleanup.deleteStream({ stream: `${prefix}${s}` }));
    await bounded(cleanup.close());
  }
  const port = best(portRuns);
  const raw = best(rawRuns);
  const ratio = port.wall / raw.wall;
  report.results.push(
    { label: 'rabbitmq port publish→consume', value: Math.round(port.wall), unit: 'msgs/s' },
    { label: 'raw rabbitmq-stream-js-client publish→consume', value: Math.round(raw.wall), unit: 'msgs/s' },
    { label: 'rabbitmq port per CPU-second', value: Math.round(port.cpu), unit: 'msgs/cpu-s' },
    { label: 'raw client per CPU-second', value: Math.round(raw.cpu), unit: 'msgs/cpu-s' },
  );
  report.ratios.push(
    { label: 'rabbitmq port / raw client', value: ratio, target: '≥ 0.5' },
    {
      label: 'rabbitmq port / 20,000 msgs/s target',
      value: port.wall / 20_000,
      target: '≥ 1',
    },
  );
  say(
    `rabbitmq port:  ${fmt(port.wall)} msgs/s (runs: ${portRuns.map((x) => fmt(x.wall)).join(', ')}; ${fmt(port.cpu)} per CPU-second)`,
  );
  say(
    `raw client:     ${fmt(raw.wall)} msgs/s (runs: ${rawRuns.map((x) => fmt(x.wall)).join(', ')}; ${fmt(raw.cpu)} per CPU-second)`,
  );
  say(
    `port / raw:     ${(ratio * 100).toFixed(1)} % (target ≥ 50 %); per CPU-second ${((port.cpu / raw.cpu) * 100).toFixed(1)} %`,
  );
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const report = await run({ print: true });
  console.log(JSON.stringify(report));
  process.exit(0);
}
