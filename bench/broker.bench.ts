import { pathToFileURL } from 'node:url';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { connect, Offset } from 'rabbitmq-stream-js-client';
import { creditsOnChunkCompleted } from 'rabbitmq-stream-js-client/dist/consumer_credit_policy.js';
import { silentLogger } from '../services/log.js';
import { makeEnvelope } from '../services/infra/broker/envelope.js';
import { MemoryBroker } from '../services/infra/broker/memory.js';
import { STREAMS, type Broker } from '../services/infra/broker/port.js';
import { RabbitBroker } from '../services/infra/broker/rabbitmq.js';

/** One measured figure. */
export interface BenchResult {
  label: string;
  value: number;
  unit: string;
}

/** What `run()` returns for the `npm run bench` collector. */
export interface BenchReport {
  name: string;
  results: BenchResult[];
  ratios: Array<{ label: string; value: number; target: number; ok: boolean }>;
  notes: string[];
}

const URL_ENV = 'RABBITMQ_STREAM_URL';
const DEFAULT_URL = 'rabbitmq-stream://guest:guest@127.0.0.1:5552/';
const WINDOW = 5000;
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

async function throughPort(broker: Broker, count: number): Promise<number> {
  const batch = envelopes(count);
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await broker.subscribe(STREAMS.telemetry, { from: 'next' }, () => {
    if (++received === count) done();
  });
  const started = performance.now();
  for (let i = 0; i < count; i += WINDOW) {
    await Promise.all(batch.slice(i, i + WINDOW).map((env) => broker.publish(STREAMS.telemetry, env)));
  }
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await sub.close();
  return count / seconds;
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

async function throughRawClient(url: string, stream: string, count: number): Promise<number> {
  const client = await rawConnect(url);
  const bytes = envelopes(count).map((env) => Buffer.from(JSON.stringify(env)));
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
    const started = performance.now();
    for (const b of bytes) await publisher.send(b);
    await Promise.all([finished, confirmedAll]);
    const seconds = (performance.now() - started) / 1000;
    await publisher.close();
    await consumer.close();
    return count / seconds;
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

const best = (xs: number[]) => Math.max(...xs);

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
  const count = opts.count ?? 100_000;
  const rounds = opts.rounds ?? 3;
  const url = opts.url ?? process.env[URL_ENV] ?? DEFAULT_URL;
  const print = opts.print ?? false;
  const say = (line: string) => print && console.log(line);
  const report: BenchReport = { name: 'broker', results: [], ratios: [], notes: [] };

  const memory: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const broker = new MemoryBroker({ log: silentLogger() });
    await throughPort(broker, 20_000);
    memory.push(await throughPort(broker, count));
    await broker.close();
  }
  report.results.push({
    label: 'memory broker publish→consume',
    value: Math.round(best(memory)),
    unit: 'msgs/s',
  });
  report.ratios.push({
    label: 'memory broker vs 100,000 msgs/s target',
    value: best(memory) / 100_000,
    target: 1,
    ok: best(memory) >= 100_000,
  });
  say(
    `memory broker:  ${Math.round(best(memory)).toLocaleString('en')} msgs/s (best of ${rounds} × ${count.toLocaleString('en')})`,
  );

  if (!(await reachable(url))) {
    const note = `RabbitMQ streams not reachable at ${new URL(url).host} (${URL_ENV}); ran the in-process broker only`;
    report.notes.push(note);
    say(note);
    return report;
  }

  const port: number[] = [];
  const raw: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const prefix = `bench-${randomBytes(4).toString('hex')}-`;
    raw.push(await throughRawClient(url, `${prefix}raw`, count));
    const broker = new RabbitBroker({ url, log: silentLogger(), streamPrefix: prefix });
    port.push(await throughPort(broker, count));
    await broker.close();
    const cleanup = await rawConnect(url);
    for (const s of Object.values(STREAMS)) await bounded(cleanup.deleteStream({ stream: `${prefix}${s}` }));
    await bounded(cleanup.close());
  }
  const ratio = best(port) / best(raw);
  report.results.push(
    { label: 'rabbitmq port publish→consume', value: Math.round(best(port)), unit: 'msgs/s' },
    { label: 'raw rabbitmq-stream-js-client publish→consume', value: Math.round(best(raw)), unit: 'msgs/s' },
  );
  report.ratios.push(
    { label: 'rabbitmq port / raw client', value: ratio, target: 0.5, ok: ratio >= 0.5 },
    {
      label: 'rabbitmq port vs 20,000 msgs/s target',
      value: best(port) / 20_000,
      target: 1,
      ok: best(port) >= 20_000,
    },
  );
  say(
    `rabbitmq port:  ${Math.round(best(port)).toLocaleString('en')} msgs/s (runs: ${port.map((x) => Math.round(x)).join(', ')})`,
  );
  say(
    `raw client:     ${Math.round(best(raw)).toLocaleString('en')} msgs/s (runs: ${raw.map((x) => Math.round(x)).join(', ')})`,
  );
  say(`port / raw:     ${(ratio * 100).toFixed(1)} % (target ≥ 50 %)`);
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const report = await run({ print: true });
  console.log(JSON.stringify(report));
  process.exit(0);
}
