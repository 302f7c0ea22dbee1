// size: one soak scenario script (real MariaDB, Redis, RabbitMQ and worker processes, then its checks), read top to bottom; splitting it is left for later (#16).
import http from 'node:http';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { connect } from 'rabbitmq-stream-js-client';
import { z } from 'zod';
import { writeSquaresDataset } from '../gpu-runner/runner.fixtures.js';
import {
  createBroker,
  STREAMS,
  type Broker,
  type Envelope,
  type MessagePayload,
} from '../services/infra/broker/index.js';
import { silentLogger } from '../core/log.js';
import {
  createTempMysqlDatabase,
  SERVICE_URLS,
  startRabbitApp,
  stopRabbitApp,
  uniqueSuffix,
} from '../test/services.fixtures.js';
import {
  adminCredentials,
  Api,
  deleteStreams,
  freePort,
  Processes,
  type CliProcess,
  type Thread,
} from '../test/reliability/processes.js';
import { recordBenchmark, type BenchReport } from './run-all.js';

/**
 * The chaos soak (`npm run soak -- --minutes N`): two `visioninapp serve` instances sharing MariaDB (a
 * fresh database), Redis and RabbitMQ Streams (a fresh stream prefix), two `gpu-runner` and five
 * `edge-runner` processes, all real processes. A driver keeps conversations going over REST against
 * both serve instances in turn (train, deploy, roll back, approve / reject) while a chaos loop SIGKILLs
 * a random process every 20–60 s and restarts it, and once stops RabbitMQ's app. At the end it checks
 * the invariants (exactly-once approved steps, nothing stuck, one model version per job, devices on
 * models a rollout or rollback put there, the audit chain, no message lost, no consumer lag), prints
 * them as a table and records the figures in bench/results.json and the README table.
 */

export const soakOptionsSchema = z.object({
  minutes: z.coerce
    .number()
    .positive()
    .max(24 * 60),
  killMinS: z.coerce.number().min(1).default(20),
  killMaxS: z.coerce.number().min(1).default(60),
  rabbitStopS: z.coerce.number().min(0).max(120).default(10),
  /** Stop RabbitMQ's app even while other test runs (vitest) on this machine use it. */
  forceRabbitStop: z.boolean().default(false),
  settleS: z.coerce.number().min(10).default(180),
  /** Record the figures in bench/results.json and the README (default true). */
  record: z.boolean().default(true),
  /** Keep the database, streams and logs afterwards (they are kept anyway when an invariant fails). */
  keep: z.boolean().default(false),
});
export type SoakOptions = z.infer<typeof soakOptionsSchema>;

const TAG = 'line-7';
const TARGET_TEXT = 'line 7';
const DATASET = 'soak-squares';
const MODEL = 'soak';
const GPU_RUNNERS = 2;
const EDGE_RUNNERS = 5;
/** Tiny training, as in the crash suite: seconds on a loaded 2-core machine. */
const TRAIN_ARGS = { backend: 'builtin', model: 'builtin-t', epochs: 2, imgsz: 64, batch: 8 };
const FINAL_THREAD = ['done', 'failed', 'stopped', 'clarify'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (min: number, max: number) => min + Math.random() * (max - min);
const stamp = () => new Date().toISOString().slice(11, 19);
const say = (line: string) => process.stdout.write(`[soak ${stamp()}] ${line}\n`);

/** One restartable member of the cluster. */
interface Member {
  kind: 'serve' | 'gpu-runner' | 'edge-runner';
  label: string;
  proc: CliProcess;
  start: () => CliProcess;
  /** Resolves once the restarted process is ready for the next kill. */
  ready: () => Promise<void>;
  kills: number;
  logs: string[];
}

/**
 * The load balancer in front of the serve instances (what PUBLIC_URL points at, like nginx in a real
 * deployment): each request goes to the next instance, and to the other when that one is down.
 * Bodies are buffered so a refused connection can be retried elsewhere (artifacts here are small).
 */
class Balancer {
  private server: http.Server | undefined;
  private next = 0;
  constructor(private readonly ports: number[]) {}

  async start(): Promise<number> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const first = this.next++ % this.ports.length;
        const attempt = (i: number) => {
          const port = this.ports[(first + i) % this.ports.length]!;
          const up = http.request(
            { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
            (r) => {
              res.writeHead(r.statusCode ?? 502, r.headers);
              r.pipe(res);
            },
          );
          up.on('error', () => {
            if (res.headersSent) return void res.destroy();
            if (i + 1 < this.ports.length * 3) return void setTimeout(() => attempt(i + 1), 200 * i);
            res.statusCode = 502;
            res.end('no platform instance reachable');
          });
          up.end(body);
        };
        attempt(0);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

/** Transient failures while an instance is being killed or restarted: try the other one. */
function transient(err: unknown): boolean {
  const m = (err as Error).message;
  return /fetch failed|ECONNREFUSED|ECONNRESET|socket hang up|HTTP 50[234]|HTTP 429|other side closed|terminated/i.test(
    m,
  );
}

/** REST against both serve instances in turn, no stickiness: each call goes to the next one, failing over on a transient error. */
class Cluster {
  private turn = 0;
  readonly calls = { total: 0, failedOver: 0, perInstance: [0, 0] };
  constructor(
    private readonly apis: Api[],
    private readonly creds: { email: string; password: string },
  ) {}

  async call<T>(what: string, fn: (api: Api) => Promise<T>, timeoutMs = 120_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let i = this.turn++ % this.apis.length;
    this.calls.total++;
    for (let attempt = 0; ; attempt++) {
      const api = this.apis[i]!;
      try {
        this.calls.perInstance[i]!++;
        return await fn(api);
      } catch (err) {
        const m = (err as Error).message;
        if (/HTTP 401/.test(m)) await api.login(this.creds, 60_000).catch(() => undefined);
        else if (!transient(err) || Date.now() > deadline) throw new Error(`${what}: ${m}`);
        if (attempt === 0) this.calls.failedOver++;
        i = (i + 1) % this.apis.length;
        await sleep(attempt < this.apis.length ? 100 : 1000);
      }
    }
  }
}

interface DriverStats {
  conversations: number;
  approved: number;
  rejected: number;
  outcomes: Record<string, number>;
  reasked: number;
  errors: string[];
}

/** One conversation: request, decide its pending approval (approve, edit or reject), wait until it ends. */
async function converse(
  cluster: Cluster,
  stats: DriverStats,
  message: string,
  decision: { kind: 'approve' } | { kind: 'edit'; args: Record<string, unknown> } | { kind: 'reject' },
  timeoutMs: number,
  stop: () => boolean,
): Promise<Thread | undefined> {
  stats.conversations++;
  const started = await cluster.call(`POST /api/conversations "${message}"`, (api) =>
    api.post<Thread>('/api/conversations', { message }),
  );
  let thread = started;
  if (started.pendingApproval === null) {
    stats.outcomes[`no approval asked (${started.status})`] =
      (stats.outcomes[`no approval asked (${started.status})`] ?? 0) + 1;
    return started;
  }
  const approvalId = started.pendingApproval.approvalId;
  const body =
    decision.kind === 'reject'
      ? { approvalId, decision: 'reject', reason: 'soak: rejected on purpose' }
      : decision.kind === 'edit'
        ? { approvalId, decision: 'edit', args: decision.args }
        : { approvalId, decision: 'approve' };
  try {
    thread = await cluster.call(`decide ${approvalId}`, (api) =>
      api.post<Thread>(`/api/conversations/${started.id}/decide`, body),
    );
  } catch (err) {
    // a decision that reached an instance which then died may have been applied: the thread says
    const now = await cluster.call(`GET thread ${started.id}`, (api) =>
      api.get<Thread>(`/api/conversations/${started.id}`),
    );
    if (now.pendingApproval?.approvalId === approvalId) throw err;
    thread = now;
  }
  if (decision.kind === 'reject') stats.rejected++;
  else stats.approved++;
  const deadline = Date.now() + timeoutMs;
  while (!FINAL_THREAD.includes(thread.status)) {
    if (Date.now() > deadline || stop()) break;
    if (thread.pendingApproval !== null && thread.pendingApproval.approvalId !== approvalId) {
      // asked again (e.g. a step interrupted with an unknown outcome): a person would look; the soak declines
      stats.reasked++;
      const again = thread.pendingApproval.approvalId;
      thread = await cluster
        .call(`decide ${again}`, (api) =>
          api.post<Thread>(`/api/conversations/${started.id}/decide`, {
            approvalId: again,
            decision: 'reject',
            reason: 'soak: asked again after a crash',
          }),
        )
        .catch(() => thread);
      continue;
    }
    await sleep(1000);
    thread = await cluster.call(`GET thread ${started.id}`, (api) =>
      api.get<Thread>(`/api/conversations/${started.id}`),
    );
  }
  const key = FINAL_THREAD.includes(thread.status)
    ? thread.status
    : `still ${thread.status} when the driver moved on`;
  stats.outcomes[key] = (stats.outcomes[key] ?? 0) + 1;
  return thread;
}

/** Other vitest runs on this machine (they share RabbitMQ; stopping it under them would fail their tests). */
function otherTestRuns(): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('vitest')) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

interface Invariant {
  name: string;
  checked: string;
  violations: number;
  detail: string[];
}

/** Runs the soak and returns its report (figures for bench/results.json). */
export async function runSoak(
  input: Partial<SoakOptions> & { minutes: number },
): Promise<{ report: BenchReport; violations: number }> {
  const opts = soakOptionsSchema.parse(input);
  if (opts.killMaxS < opts.killMinS)
    throw new Error(`--kill-max-s (${opts.killMaxS}) is below --kill-min-s (${opts.killMinS})`);
  const startedAt = Date.now();
  const loadBefore = Number(os.loadavg()[0]!.toFixed(2));
  const root = mkdtempSync(path.join(tmpdir(), 'visioninapp-soak-'));
  const logDir = path.join(root, 'logs');
  mkdirSync(logDir);
  const procs = new Processes();
  const prefix = `soak-${uniqueSuffix()}-`;
  const redisDb = Number(process.env.SOAK_REDIS_DB ?? 11);
  const redisUrl = new URL(SERVICE_URLS.redis);
  redisUrl.pathname = `/${redisDb}`;
  const db = await createTempMysqlDatabase();
  const sql: Connection = await createConnection({ uri: db.url });
  let observer: Broker | undefined;
  let balancer: Balancer | undefined;
  const members: Member[] = [];
  const chaosLog: string[] = [];
  let rabbitStops = 0;
  let rabbitNote = 'not attempted';
  let keep = opts.keep;
  say(
    `root ${root}; database ${db.url.replace(/\/\/[^@]*@/, '//')}; streams ${prefix}*; Redis db ${redisDb}`,
  );

  try {
    // ---- the cluster ------------------------------------------------------------------------
    const datasetDir = path.join(root, 'dataset');
    await writeSquaresDataset(datasetDir, { counts: { train: 24, val: 8, test: 8 }, size: 64 });
    const servePorts = [await freePort(), await freePort()];
    balancer = new Balancer(servePorts);
    const publicPort = await balancer.start();
    const shared = {
      // one shared data folder (artifact storage, audit anchor) stands for shared storage; secrets set explicitly
      DATA_DIR: path.join(root, 'platform'),
      IMPORT_ROOTS: datasetDir,
      PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl.toString(),
      RABBITMQ_STREAM_URL: SERVICE_URLS.rabbitmq,
      RABBITMQ_STREAM_PREFIX: prefix,
      SIGNING_SECRET: randomBytes(32).toString('base64url'),
      AUDIT_KEY: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'info',
      EMBEDDED_GPU_RUNNER: 'false',
      SIMULATED_DEVICES: '0',
      DEMO_DATASET: 'false',
      JOB_HEARTBEAT_TIMEOUT_S: '20',
      JOB_MAX_ATTEMPTS: '3',
      DEVICE_ONLINE_WINDOW_S: '8',
      ROLLOUT_HEALTH_TIMEOUT_S: '60',
      ROLLOUT_MIN_HEARTBEATS: '2',
      ROLLOUT_OBSERVE_S: '6',
      ROLLOUT_CONFIDENCE_MARGIN: 'off',
    };
    const observed: { control: Envelope[]; telemetry: Array<Envelope & { offset: number }> } = {
      control: [],
      telemetry: [],
    };
    observer = await createBroker({
      rabbitmqUrl: SERVICE_URLS.rabbitmq,
      streamPrefix: prefix,
      log: silentLogger(),
    });
    await observer.subscribe(STREAMS.control, { from: 'first' }, (e) => void observed.control.push(e));
    await observer.subscribe(
      STREAMS.telemetry,
      { from: 'first' },
      (e, meta) => void observed.telemetry.push({ ...e, offset: meta.offset }),
    );

    const add = (
      kind: Member['kind'],
      label: string,
      start: () => CliProcess,
      ready: () => Promise<void>,
    ) => {
      const m: Member = { kind, label, proc: start(), start, ready, kills: 0, logs: [] };
      members.push(m);
      return m;
    };
    const healthy = async (port: number, label: string, anyAnswer = false) => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${port}/healthz`)
          .then((r) => r.ok || anyAnswer)
          .catch(() => false);
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`${label} did not answer /healthz within 120 s`);
        await sleep(300);
      }
    };
    // the first serve migrates the fresh database and prints the admin; the second starts after it
    const serves = servePorts.map(
      (port, i) => () => procs.start(`serve-${i + 1}`, ['serve'], { ...shared, PORT: String(port) }),
    );
    add('serve', 'serve-1', serves[0]!, () => healthy(servePorts[0]!, 'serve-1'));
    const creds = await adminCredentials(members[0]!.proc);
    await healthy(servePorts[0]!, 'serve-1');
    add('serve', 'serve-2', serves[1]!, () => healthy(servePorts[1]!, 'serve-2'));
    await healthy(servePorts[1]!, 'serve-2');
    const apis = await Promise.all(servePorts.map((p) => new Api(`http://127.0.0.1:${p}`).login(creds)));
    const cluster = new Cluster(apis, creds);
    for (let i = 1; i <= GPU_RUNNERS; i++) {
      const id = `gpu-soak-${i}`;
      const workDir = path.join(root, id);
      add(
        'gpu-runner',
        id,
        () =>
          procs.start(
            id,
            [
              'gpu-runner',
              '--id',
              id,
              '--backends',
              'builtin',
              '--work-dir',
              workDir,
              '--heartbeat-seconds',
              '2',
            ],
            shared,
          ),
        async () => void (await sleep(3000)),
      );
    }
    const edgePorts: Record<string, number> = {};
    for (let i = 1; i <= EDGE_RUNNERS; i++) {
      const id = `soak-cam-${i}`;
      const httpPort = await freePort();
      edgePorts[id] = httpPort;
      const dataDir = path.join(root, id);
      const args = [
        'edge-runner',
        '--device-id',
        id,
        '--tags',
        TAG,
        '--broker-url',
        SERVICE_URLS.rabbitmq,
        '--stream-prefix',
        prefix,
        '--source',
        `folder:${path.join(datasetDir, 'images', 'test')}`,
        '--fps',
        '1',
        '--data-dir',
        dataDir,
        '--http-port',
        String(httpPort),
        '--http-host',
        '127.0.0.1',
        '--heartbeat-seconds',
        '1',
        '--feedback-per-minute',
        '0',
        '--threads',
        '1',
      ];
      add(
        'edge-runner',
        id,
        () => procs.start(id, args, { LOG_LEVEL: 'info' }),
        // ready once its HTTP server answers at all (503 while it has no model yet)
        () => healthy(httpPort, id, true),
      );
    }
    say(
      `started ${members.length} processes: ${members.map((m) => m.label).join(', ')}; PUBLIC_URL ${shared.PUBLIC_URL}`,
    );

    // ---- the dataset, then the driver and the chaos loop ------------------------------------
    const stats: DriverStats = {
      conversations: 0,
      approved: 0,
      rejected: 0,
      outcomes: {},
      reasked: 0,
      errors: [],
    };
    let stopDriver = false;
    const imported = await converse(
      cluster,
      stats,
      `import ${datasetDir} as ${DATASET}`,
      { kind: 'approve' },
      180_000,
      () => false,
    );
    if (imported?.status !== 'done')
      throw new Error(`the dataset import did not finish: ${JSON.stringify(imported).slice(0, 600)}`);
    say('dataset imported; driver and chaos start');
    const chaosUntil = Date.now() + opts.minutes * 60_000;

    const lane = async (name: string, body: (n: number) => Promise<void>) => {
      for (let n = 0; !stopDriver && Date.now() < chaosUntil; n++) {
        try {
          await body(n);
        } catch (err) {
          stats.errors.push(`${name}: ${(err as Error).message}`.slice(0, 400));
          say(`${name}: ${(err as Error).message.slice(0, 300)}`);
          await sleep(3000);
        }
      }
    };
    const trainLane = lane('train', async (n) => {
      const t = await converse(
        cluster,
        stats,
        `train a detector on dataset ${DATASET} for ${TRAIN_ARGS.epochs} epochs`,
        { kind: 'edit', args: { dataset: DATASET, name: MODEL, ...TRAIN_ARGS, batch: 4 + (n % 5) } },
        300_000,
        () => stopDriver,
      );
      say(`train #${n + 1}: ${t?.status ?? '?'} ${(t?.report ?? '').slice(0, 400).replace(/\s+/g, ' ')}`);
    });
    const fleetLane = lane('fleet', async (n) => {
      const versions = await cluster.call('GET /api/models', (api) =>
        api.get<{ versions: Array<{ id: string; version: number }> }>(`/api/models?name=${MODEL}`),
      );
      if (versions.versions.length === 0) return void (await sleep(3000));
      // a version the line does not run yet (a rollout of what every device already runs ends at once)
      const devices = await cluster.call('GET /api/devices', (api) =>
        api.get<{ devices: Array<{ modelVersionId: string | null }> }>(`/api/devices?tag=${TAG}`),
      );
      const running = new Set(devices.devices.map((d) => d.modelVersionId));
      const fresh = versions.versions.filter((v) => !running.has(v.id));
      if (fresh.length === 0) {
        // the line already runs every version: wait for the train lane instead of asking for a no-op
        await sleep(3000);
        return;
      }
      const pick = fresh[Math.floor(Math.random() * fresh.length)]!;
      // every fifth deploy is rejected: a rejected approval must never run
      const reject = n % 5 === 4;
      const d = await converse(
        cluster,
        stats,
        `deploy ${MODEL}@${pick.version} to ${TARGET_TEXT}`,
        reject ? { kind: 'reject' } : { kind: 'approve' },
        300_000,
        () => stopDriver,
      );
      say(
        `deploy ${MODEL}@${pick.version}${reject ? ' (rejected)' : ''}: ${d?.status ?? '?'} ${(d?.report ?? '').slice(0, 400).replace(/\s+/g, ' ')}`,
      );
      if (!reject && n % 3 === 1 && !stopDriver) {
        const r = await converse(
          cluster,
          stats,
          `roll back ${TARGET_TEXT}`,
          { kind: 'approve' },
          180_000,
          () => stopDriver,
        );
        say(`roll back: ${r?.status ?? '?'} ${(r?.report ?? '').slice(0, 400).replace(/\s+/g, ' ')}`);
      }
    });

    const rabbitAt = Date.now() + opts.minutes * 60_000 * 0.4;
    const chaos = (async () => {
      while (Date.now() < chaosUntil) {
        const wait = rand(opts.killMinS, opts.killMaxS) * 1000;
        await sleep(Math.min(wait, Math.max(0, chaosUntil - Date.now())));
        if (Date.now() >= chaosUntil) break;
        if (opts.rabbitStopS > 0 && rabbitStops === 0 && Date.now() >= rabbitAt) {
          const others = otherTestRuns();
          if (others > 0 && !opts.forceRabbitStop)
            rabbitNote = `deferred: ${others} vitest processes of other runs share RabbitMQ`;
          else {
            say(`stopping RabbitMQ's app for ${opts.rabbitStopS} s`);
            chaosLog.push(`${stamp()} rabbitmqctl stop_app (${opts.rabbitStopS} s)`);
            await stopRabbitApp();
            try {
              await sleep(opts.rabbitStopS * 1000);
            } finally {
              await startRabbitApp();
            }
            rabbitStops++;
            rabbitNote = `stopped once for ${opts.rabbitStopS} s`;
            say('RabbitMQ started again');
            continue;
          }
        }
        const m = members[Math.floor(Math.random() * members.length)]!;
        say(`SIGKILL ${m.label}`);
        chaosLog.push(`${stamp()} SIGKILL ${m.label}`);
        m.logs.push(m.proc.output());
        await m.proc.kill();
        m.kills++;
        await sleep(rand(500, 3000));
        m.proc = m.start();
        await m.ready().catch((err: Error) => say(`${m.label} restart: ${err.message}`));
      }
    })();
    await chaos;
    if (opts.rabbitStopS > 0 && rabbitStops === 0 && !rabbitNote.startsWith('deferred'))
      rabbitNote = 'the run was too short to reach it';
    say('chaos over; settling');
    stopDriver = true;
    await Promise.all([trainLane, fleetLane]);

    // ---- settle: nothing in flight ----------------------------------------------------------
    for (const m of members)
      if (m.proc.child.exitCode !== null || m.proc.child.signalCode !== null) {
        say(`${m.label} had exited on its own (code ${m.proc.child.exitCode}); restarting it`);
        chaosLog.push(`${stamp()} ${m.label} exited by itself (code ${m.proc.child.exitCode})`);
        m.logs.push(m.proc.output());
        m.proc = m.start();
        await m.ready().catch(() => undefined);
      }
    const inFlight = async () => {
      const q = async (s: string) => ((await sql.query<RowDataPacket[]>(s))[0][0] as { n: number }).n;
      return {
        jobs: await q(`SELECT COUNT(*) n FROM training_jobs WHERE status IN ('queued','assigned','running')`),
        rollouts: await q(
          `SELECT COUNT(*) n FROM rollouts WHERE state IN ('pending','canary','waves','paused')`,
        ),
        steps: await q(`SELECT COUNT(*) n FROM tool_executions WHERE status = 'started'`),
        threads: await q(`SELECT COUNT(*) n FROM agent_threads WHERE status IN ('running','waiting')`),
      };
    };
    const settleUntil = Date.now() + opts.settleS * 1000;
    let left = await inFlight();
    while (Object.values(left).some((n) => n > 0) && Date.now() < settleUntil) {
      await sleep(2000);
      left = await inFlight();
    }
    say(`settled: ${JSON.stringify(left)}`);
    await sleep(3000);

    // ---- invariants -------------------------------------------------------------------------
    const rows = async <T>(s: string, params: unknown[] = []) =>
      (await sql.query<RowDataPacket[]>(s, params))[0] as unknown as T[];
    const inv: Invariant[] = [];

    {
      const executions = await rows<{ approval_id: string; tool: string; status: string; attempt: number }>(
        `SELECT approval_id, tool, status, attempt FROM tool_executions`,
      );
      const audit = await rows<{ approval_id: string; action: string; n: number }>(
        `SELECT approval_id, action, COUNT(*) n FROM audit_log WHERE approval_id IS NOT NULL AND action IN ('tool.started','tool.finished','tool.failed','tool.interrupted') GROUP BY approval_id, action`,
      );
      const detail: string[] = [];
      for (const a of audit)
        if (Number(a.n) > 1) detail.push(`approval ${a.approval_id}: ${a.n} × ${a.action} in audit_log`);
      const ended = new Map<string, number>();
      for (const a of audit)
        if (a.action !== 'tool.started')
          ended.set(a.approval_id, (ended.get(a.approval_id) ?? 0) + Number(a.n));
      for (const [id, n] of ended)
        if (n > 1) detail.push(`approval ${id}: ${n} outcome entries (finished/failed/interrupted)`);
      for (const e of executions)
        if (e.status === 'started') detail.push(`approval ${e.approval_id} (${e.tool}) still "started"`);
      // a rejected approval never runs
      const rejectedRan = await rows<{ id: string }>(
        `SELECT a.id FROM approvals a JOIN tool_executions t ON t.approval_id = a.id WHERE a.status = 'rejected'`,
      ).catch(() => []);
      for (const r of rejectedRan) detail.push(`rejected approval ${r.id} ran`);
      // the effects a run created under its key: one training job / rollout per approval
      const jobs = await rows<{ n: number }>(
        `SELECT COUNT(*) n FROM training_jobs WHERE thread_id IS NOT NULL`,
      );
      const jobRuns = executions.filter((e) => e.tool === 'start_training' && e.status === 'finished').length;
      if (Number(jobs[0]!.n) !== jobRuns)
        detail.push(
          `${jobs[0]!.n} training jobs from conversations but ${jobRuns} finished start_training runs`,
        );
      const rollouts = await rows<{ n: number }>(`SELECT COUNT(*) n FROM rollouts`);
      const rolloutRuns = executions.filter(
        (e) => e.tool === 'start_rollout' && e.status === 'finished',
      ).length;
      if (Number(rollouts[0]!.n) !== rolloutRuns)
        detail.push(`${rollouts[0]!.n} rollouts but ${rolloutRuns} finished start_rollout runs`);
      const resumed = executions.filter((e) => e.attempt > 1).length;
      const interrupted = executions.filter((e) => e.status === 'interrupted').length;
      inv.push({
        name: 'every approved step ran exactly once (by idempotency key)',
        checked: `${executions.length} executions (${resumed} resumed after a crash, ${interrupted} interrupted), audit tool.* per approval, ${jobRuns} jobs / ${rolloutRuns} rollouts vs their runs, rejected approvals`,
        violations: detail.length,
        detail,
      });
    }
    {
      const detail: string[] = [];
      for (const j of await rows<{ id: string; status: string }>(
        `SELECT id, status FROM training_jobs WHERE status IN ('queued','assigned','running')`,
      ))
        detail.push(`job ${j.id} ${j.status}`);
      for (const r of await rows<{ id: string; state: string }>(
        `SELECT id, state FROM rollouts WHERE state IN ('pending','canary','waves','paused')`,
      ))
        detail.push(`rollout ${r.id} ${r.state}`);
      for (const t of await rows<{ id: string; status: string }>(
        `SELECT id, status FROM agent_threads WHERE status IN ('running','waiting')`,
      ))
        detail.push(`conversation ${t.id} ${t.status}`);
      const counts = await rows<{ n: number }>(
        `SELECT (SELECT COUNT(*) FROM training_jobs) + (SELECT COUNT(*) FROM rollouts) n`,
      );
      inv.push({
        name: `no job, rollout or conversation stuck (after up to ${opts.settleS} s settling)`,
        checked: `${counts[0]!.n} jobs and rollouts, every conversation`,
        violations: detail.length,
        detail,
      });
    }
    {
      const dup = await rows<{ job_id: string; n: number }>(
        `SELECT job_id, COUNT(*) n FROM model_versions WHERE job_id IS NOT NULL GROUP BY job_id HAVING COUNT(*) > 1`,
      );
      const total = await rows<{ n: number }>(`SELECT COUNT(*) n FROM model_versions`);
      inv.push({
        name: 'no model version registered twice for one job',
        checked: `${total[0]!.n} versions`,
        violations: dup.length,
        detail: dup.map((d) => `job ${d.job_id}: ${d.n} versions`),
      });
    }
    {
      const detail: string[] = [];
      const devices = await rows<{ id: string; model_version_id: string | null }>(
        `SELECT id, model_version_id FROM devices`,
      );
      const allowed = new Map<string, Set<string>>();
      const put = (d: string, v: string | null) =>
        v !== null && (allowed.get(d) ?? allowed.set(d, new Set()).get(d)!).add(v);
      for (const r of await rows<{ device_id: string; model_version_id: string }>(
        `SELECT d.device_id, r.model_version_id FROM rollout_deployments d JOIN rollouts r ON r.id = d.rollout_id WHERE r.state = 'completed' AND d.state = 'healthy'`,
      ))
        put(r.device_id, r.model_version_id);
      for (const r of await rows<{ device_id: string; previous_model_version_id: string | null }>(
        `SELECT device_id, previous_model_version_id FROM rollout_deployments WHERE state = 'rolled_back'`,
      ))
        put(r.device_id, r.previous_model_version_id);
      for (const d of devices) {
        if (d.model_version_id !== null && !allowed.get(d.id)?.has(d.model_version_id))
          detail.push(
            `${d.id} (platform view) serves ${d.model_version_id}, put there by no completed rollout or rollback`,
          );
        const port = edgePorts[d.id];
        if (port === undefined) continue;
        const h = (await fetch(`http://127.0.0.1:${port}/healthz`)
          .then((r) => r.json())
          .catch((e: Error) => ({ error: e.message }))) as { modelVersionId?: string | null; error?: string };
        if (h.error !== undefined) detail.push(`${d.id}: /healthz failed: ${h.error}`);
        else if ((h.modelVersionId ?? null) !== d.model_version_id)
          detail.push(
            `${d.id} serves ${h.modelVersionId ?? 'nothing'} but the platform records ${d.model_version_id ?? 'nothing'}`,
          );
      }
      if (devices.length !== EDGE_RUNNERS)
        detail.push(`${devices.length} devices registered, expected ${EDGE_RUNNERS}`);
      inv.push({
        name: 'every device serves a model a completed rollout or a rollback put there',
        checked: `${devices.length} devices (platform record and the runner's /healthz)`,
        violations: detail.length,
        detail,
      });
    }
    {
      const verify = procs.start('audit verify', ['audit', 'verify', '--json'], {
        ...shared,
        PORT: '0',
        LOG_LEVEL: 'warn',
      });
      const code = await new Promise<number>((resolve) => verify.child.once('exit', (c) => resolve(c ?? 1)));
      const out = verify.output();
      let parsed: {
        ok?: boolean;
        checked?: number;
        problems?: Array<{ seq: number; kind: string; detail: string }>;
      } = {};
      try {
        parsed = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as typeof parsed;
      } catch {
        /* reported below */
      }
      const detail =
        code === 0 && parsed.ok === true
          ? []
          : [
              `exit ${code}: ${
                (parsed.problems ?? [])
                  .slice(0, 5)
                  .map((p) => `seq ${p.seq} ${p.kind}: ${p.detail}`)
                  .join('; ') || out.slice(-400)
              }`,
            ];
      inv.push({
        name: '`visioninapp audit verify` passes',
        checked: `${parsed.checked ?? '?'} entries`,
        violations: detail.length,
        detail,
      });
    }
    {
      const detail: string[] = [];
      const jobs = new Map(
        (
          await rows<{ id: string; status: string; attempt: number; model_version_id: string | null }>(
            `SELECT id, status, attempt, model_version_id FROM training_jobs`,
          )
        ).map((j) => [j.id, j]),
      );
      const deployments = new Map(
        (await rows<{ id: string; state: string }>(`SELECT id, state FROM rollout_deployments`)).map((d) => [
          d.id,
          d,
        ]),
      );
      let checked = 0;
      const ids = new Set<string>();
      let duplicates = 0;
      for (const e of [...observed.control, ...observed.telemetry]) {
        if (ids.has(e.id)) duplicates++;
        else ids.add(e.id);
      }
      for (const e of observed.telemetry) {
        if (e.type === 'train.status') {
          const p = e.payload as MessagePayload<'train.status'>;
          const j = jobs.get(p.jobId);
          if (
            j === undefined ||
            p.attempt !== j.attempt ||
            !['succeeded', 'failed', 'cancelled'].includes(p.status)
          )
            continue;
          checked++;
          if (j.status !== p.status && !(p.status === 'succeeded' && j.status === 'failed'))
            detail.push(
              `${e.id}: job ${p.jobId} reported ${p.status} (attempt ${p.attempt}) but is ${j.status}`,
            );
        } else if (e.type === 'artifact.ready') {
          const p = e.payload as MessagePayload<'artifact.ready'>;
          const j = jobs.get(p.jobId);
          if (j === undefined || p.attempt !== j.attempt || j.status !== 'succeeded') continue;
          checked++;
          if (j.model_version_id === null)
            detail.push(`${e.id}: artifact of job ${p.jobId} never registered`);
        } else if (e.type === 'device.health') {
          const p = e.payload as MessagePayload<'device.health'>;
          if (p.state !== 'healthy') continue;
          checked++;
          const d = deployments.get(p.deploymentId);
          if (d === undefined || d.state === 'pending' || d.state === 'sent')
            detail.push(
              `${e.id}: ${p.deviceId} healthy on deployment ${p.deploymentId} but the platform has it ${d?.state ?? 'unknown'}`,
            );
        }
      }
      const answered = new Set(
        observed.telemetry
          .filter((e) => e.type === 'device.health')
          .map((e) => (e.payload as MessagePayload<'device.health'>).deploymentId),
      );
      for (const e of observed.control) {
        if (e.type !== 'deploy.apply') continue;
        checked++;
        const p = e.payload as MessagePayload<'deploy.apply'>;
        const d = deployments.get(p.deploymentId);
        if (!answered.has(p.deploymentId) && d?.state !== 'rolled_back' && d?.state !== 'skipped')
          detail.push(
            `${e.id}: ${p.deviceId} never answered deploy.apply ${p.deploymentId} (deployment ${d?.state ?? 'unknown'})`,
          );
      }
      inv.push({
        name: 'no message lost (by envelope ids)',
        checked: `${checked} envelopes whose effect is observable (terminal train.status, artifact.ready, healthy device.health → database; deploy.apply → device answer) of ${observed.control.length} control + ${observed.telemetry.length} telemetry seen; ${duplicates} ids seen twice on the streams (consumers drop them)`,
        violations: detail.length,
        detail,
      });
    }
    {
      const detail: string[] = [];
      const last = observed.telemetry.reduce((m, e) => Math.max(m, e.offset), -1);
      await sleep(3000);
      const u = new URL(SERVICE_URLS.rabbitmq);
      const raw = await connect({
        hostname: u.hostname,
        port: Number(u.port || 5552),
        username: decodeURIComponent(u.username || 'guest'),
        password: decodeURIComponent(u.password || 'guest'),
        vhost: decodeURIComponent(u.pathname.slice(1)) || '/',
      });
      const lags: string[] = [];
      try {
        for (const name of [
          'platform-training',
          'platform-fleet',
          'platform-feedback',
          'platform-rollouts',
        ]) {
          const stored = await raw
            .queryOffset({ reference: name, stream: `${prefix}${STREAMS.telemetry}` })
            .then(Number)
            .catch(() => undefined);
          const lag = stored === undefined ? undefined : Math.max(0, last - stored);
          lags.push(`${name} ${lag ?? 'no offset'}`);
          if (stored === undefined && name !== 'platform-feedback') detail.push(`${name}: no stored offset`);
          else if (lag !== undefined && lag > 0)
            detail.push(`${name}: ${lag} messages behind offset ${last}`);
        }
      } finally {
        await raw.close().catch(() => undefined);
      }
      inv.push({
        name: 'consumer lag back to zero',
        checked: `stored offsets of the platform consumers on telemetry vs the last offset seen 3 s earlier (${last}): ${lags.join(', ')}`,
        violations: detail.length,
        detail,
      });
    }

    // ---- the report -------------------------------------------------------------------------
    const kills = members.reduce((n, m) => n + m.kills, 0);
    const serveKills = members.filter((m) => m.kind === 'serve').reduce((n, m) => n + m.kills, 0);
    const violations = inv.reduce((n, i) => n + i.violations, 0);
    const jobsDone = await rows<{ status: string; n: number }>(
      `SELECT status, COUNT(*) n FROM training_jobs GROUP BY status`,
    );
    const rolloutsDone = await rows<{ state: string; n: number }>(
      `SELECT state, COUNT(*) n FROM rollouts GROUP BY state`,
    );
    process.stdout.write(`\n${table(inv)}\n`);
    process.stdout.write(
      `\nchaos: ${kills} SIGKILLs (${serveKills} of a serve), RabbitMQ ${rabbitNote}\n` +
        `conversations: ${stats.conversations} (${stats.approved} approved, ${stats.rejected} rejected, asked again ${stats.reasked}): ${JSON.stringify(stats.outcomes)}\n` +
        `jobs: ${JSON.stringify(Object.fromEntries(jobsDone.map((r) => [r.status, Number(r.n)])))}; rollouts: ${JSON.stringify(Object.fromEntries(rolloutsDone.map((r) => [r.state, Number(r.n)])))}\n` +
        `REST calls: ${cluster.calls.total} (per instance ${cluster.calls.perInstance.join(' / ')}, ${cluster.calls.failedOver} failed over)\n` +
        (stats.errors.length
          ? `driver errors (${stats.errors.length}):\n${stats.errors
              .slice(0, 10)
              .map((e) => `  ${e}`)
              .join('\n')}\n`
          : ''),
    );
    for (const i of inv) for (const d of i.detail.slice(0, 10)) process.stdout.write(`  ✗ ${i.name}: ${d}\n`);
    const report: BenchReport = {
      name: 'chaos soak',
      results: [
        { label: 'minutes of chaos', value: opts.minutes, unit: 'min' },
        { label: 'SIGKILLs survived (any process)', value: kills, unit: 'kills' },
        { label: 'SIGKILLs of a serve instance', value: serveKills, unit: 'kills' },
        { label: 'RabbitMQ app stops', value: rabbitStops, unit: 'stops' },
        { label: 'conversations driven', value: stats.conversations, unit: 'conversations' },
        {
          label: 'training jobs succeeded',
          value: Number(jobsDone.find((r) => r.status === 'succeeded')?.n ?? 0),
          unit: 'jobs',
        },
        {
          label: 'rollouts completed',
          value: Number(rolloutsDone.find((r) => r.state === 'completed')?.n ?? 0),
          unit: 'rollouts',
        },
        { label: 'invariant violations', value: violations, unit: 'violations' },
      ],
      ratios: [{ label: 'invariant violations', value: violations, target: '= 0' }],
      notes: [
        `RabbitMQ: ${rabbitNote}`,
        ...inv.map((i) => `${i.violations === 0 ? 'ok' : `${i.violations} violations`}: ${i.name}`),
      ],
    };
    if (violations > 0) keep = true;
    if (opts.record) await recordBenchmark('soak.ts', report, startedAt, loadBefore);
    return { report, violations };
  } finally {
    for (const m of members)
      writeFileSync(
        path.join(logDir, `${m.label}.log`),
        [...m.logs, m.proc.output()].join('\n----- SIGKILL, restarted -----\n'),
      );
    writeFileSync(path.join(logDir, 'chaos.log'), chaosLog.join('\n'));
    await procs.killAll();
    await balancer?.close();
    await observer?.close().catch(() => undefined);
    await sql.end().catch(() => undefined);
    if (keep)
      say(
        `kept for inspection: logs ${logDir}, database ${db.url.replace(/\/\/[^@]*@/, '//')}, streams ${prefix}*`,
      );
    else {
      await db.drop().catch(() => undefined);
      await deleteStreams(prefix).catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    }
  }
}

function table(inv: Invariant[]): string {
  const rows = inv.map((i) => [i.violations === 0 ? 'ok' : 'FAIL', String(i.violations), i.name, i.checked]);
  const head = ['', 'violations', 'invariant', 'what was checked'];
  const widths = head.map((h, c) =>
    Math.min(c === 3 ? 80 : 200, Math.max(h.length, ...rows.map((r) => r[c]!.length))),
  );
  const line = (r: string[]) =>
    `| ${r.map((v, c) => (v.length > widths[c]! ? `${v.slice(0, widths[c]! - 1)}…` : v.padEnd(widths[c]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Runs `rabbitmqctl` availability check (the soak stops RabbitMQ's app once). */
export function rabbitmqctlAvailable(): Promise<boolean> {
  return new Promise((resolve) => execFile('rabbitmqctl', ['status'], (err) => resolve(err === null)));
}
