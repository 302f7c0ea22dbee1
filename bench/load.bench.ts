import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { createAgentHarness } from '../evals/harness.js';
import { loadConfig } from '../app/config.js';
import { systemPrincipal } from '../core/context.js';
import { STREAMS, makeEnvelope, type MessagePayload } from '../services/infra/broker/index.js';
import { silentLogger } from '../core/log.js';
import { createPlatform } from '../app/platform.js';
import type { BenchReport } from './run-all.js';

/**
 * What the load run reads from the environment: LOAD_SECONDS (default 60, the issue's figure), LOAD_SESSIONS,
 * LOAD_RATE, and LOAD_THINK_MS, the pause between a session's answer and its next message (0 = back to back,
 * which saturates the CPU with chat alone and measures queueing rather than the platform).
 */
const envSchema = z.object({
  LOAD_SECONDS: z.coerce.number().positive().max(3600).default(60),
  LOAD_SESSIONS: z.coerce.number().int().positive().max(10_000).default(100),
  LOAD_RATE: z.coerce.number().int().positive().max(100_000).default(1000),
  LOAD_THINK_MS: z.coerce.number().int().min(0).max(600_000).default(3000),
});
const DEVICES = 50;
const MESSAGES = [
  'list datasets',
  'show the models',
  'list devices on line-3',
  'what training jobs are there',
  'show pending approvals',
];

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function heartbeat(tag: string, device: number, seq: number): MessagePayload<'device.heartbeat'> {
  return {
    deviceId: `${tag}-${device}`,
    name: `${tag} device ${device}`,
    // the platform's feedback consumer counts heartbeats per tag: the phase's total must match what was sent
    tags: [tag],
    hardware: 'bench',
    runtime: { onnxruntime: 'bench' },
    provider: 'cpu',
    modelVersionId: null,
    state: 'serving',
    // the sequence number rides in fps so the platform's last applied heartbeat can be checked
    fps: seq,
    latencyP50Ms: 5,
    latencyP95Ms: 9,
    meanTopConfidence: 0.8,
    cpuPercent: 20,
    memoryMb: 512,
    temperatureC: 50,
  };
}

interface PhaseResult {
  seconds: number;
  sessions: number;
  sent: number;
  publishErrors: number;
  received: number;
  duplicates: number;
  telemetryLatency: number[];
  chatLatency: number[];
  chatErrors: number;
  conversations: number;
  /** Heartbeats the platform's feedback consumer counted for this phase's tag. */
  counted: number;
  /** Devices whose last heartbeat the platform's fleet consumer applied. */
  applied: number;
  devices: number;
}

/** Problems a phase must not have: any error, any message lost or duplicated on the way or in the platform. */
function problems(name: string, r: PhaseResult): string[] {
  const lost = r.sent - r.publishErrors - r.received;
  const out: string[] = [];
  if (r.chatErrors > 0) out.push(`${name}: ${r.chatErrors} chat errors`);
  if (r.publishErrors > 0) out.push(`${name}: ${r.publishErrors} publish errors`);
  if (lost !== 0) out.push(`${name}: ${lost} of ${r.sent} telemetry messages lost`);
  if (r.duplicates > 0) out.push(`${name}: ${r.duplicates} telemetry messages delivered twice`);
  if (r.counted !== r.sent)
    out.push(`${name}: the platform counted ${r.counted} heartbeats of ${r.sent} sent`);
  if (r.applied !== r.devices)
    out.push(`${name}: ${r.applied} of ${r.devices} devices show their last heartbeat`);
  if (r.conversations === 0) out.push(`${name}: no chat conversation completed`);
  return out;
}

/**
 * 100 concurrent chat sessions through the agent runtime (rules planner, real graph, checkpointer
 * and audit on SQLite) while 1,000 telemetry messages/s flow through the broker port into the
 * platform's consumers, for LOAD_SECONDS: errors, lost messages, and p50/p99 latencies. A light
 * phase first (one session, a twentieth of the rate) on the same platform is the baseline the
 * latencies under load are compared with. Throws when anything errs or a message is lost or doubled.
 */
export async function run(): Promise<BenchReport> {
  const env = envSchema.parse(process.env);
  const SECONDS = env.LOAD_SECONDS;
  const SESSIONS = env.LOAD_SESSIONS;
  const RATE = env.LOAD_RATE;
  const THINK_MS = env.LOAD_THINK_MS;
  const dir = mkdtempSync(path.join(tmpdir(), 'vbench-load-'));
  const log = silentLogger();
  const platform = await createPlatform(
    loadConfig(
      {
        DATA_DIR: path.join(dir, 'platform'),
        LOG_LEVEL: 'silent',
        EMBEDDED_GPU_RUNNER: 'false',
        SIMULATED_DEVICES: '0',
        DEMO_DATASET: 'false',
      },
      dir,
    ),
    log,
  );
  await platform.start();
  const harness = await createAgentHarness({ file: path.join(dir, 'agent.db') });
  const broker = platform.infra.broker;
  const ctx = { user: systemPrincipal(), projectId: 'default', requestId: 'load', log };

  async function phase(
    tag: string,
    seconds: number,
    sessionCount: number,
    rate: number,
    thinkMs: number,
  ): Promise<PhaseResult> {
    const sentAt = new Map<string, number>();
    const telemetryLatency: number[] = [];
    let received = 0;
    let duplicates = 0;
    const seen = new Set<string>();
    const probe = await broker.subscribe(STREAMS.telemetry, { from: 'next' }, (m) => {
      if (!m.id.startsWith(`${tag}-`)) return;
      if (seen.has(m.id)) duplicates++;
      seen.add(m.id);
      received++;
      const t = sentAt.get(m.id);
      if (t !== undefined) telemetryLatency.push(performance.now() - t);
    });

    const deadline = performance.now() + seconds * 1000;
    let sent = 0;
    let publishErrors = 0;
    const lastSeq = new Map<number, number>();
    const started = performance.now();
    const publisher = (async () => {
      while (performance.now() < deadline) {
        const due = Math.floor(((performance.now() - started) / 1000) * rate) - sent;
        const batch: Array<Promise<void>> = [];
        for (let i = 0; i < due; i++) {
          const seq = sent++;
          const device = seq % DEVICES;
          lastSeq.set(device, seq);
          const id = `${tag}-${seq}`;
          sentAt.set(id, performance.now());
          batch.push(
            broker
              .publish(
                STREAMS.telemetry,
                makeEnvelope('device.heartbeat', heartbeat(tag, device, seq), { source: 'load-bench', id }),
              )
              .catch(() => void publishErrors++),
          );
        }
        await Promise.all(batch);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    const chatLatency: number[] = [];
    let chatErrors = 0;
    let conversations = 0;
    const sessions = Array.from({ length: sessionCount }, async (_, i) => {
      const userCtx = harness.ctx(`${tag}-user-${i}`, 'operator');
      if (thinkMs > 0) await new Promise((r) => setTimeout(r, (i / sessionCount) * thinkMs));
      for (let turn = 0; performance.now() < deadline; turn++) {
        // each turn arrives as its own I/O event, as a socket or HTTP message would; its latency includes
        // waiting for the event loop to get to it, as a person's would
        const t0 = performance.now();
        await new Promise((r) => setImmediate(r));
        try {
          const view = await harness.runtime.startConversation(userCtx, {
            message: MESSAGES[(i + turn) % MESSAGES.length]!,
          });
          if (view.status === 'failed') chatErrors++;
          conversations++;
        } catch {
          chatErrors++;
        }
        chatLatency.push(performance.now() - t0);
        // a person reads the answer before typing the next message; sessions start staggered over one pause
        if (thinkMs > 0)
          await new Promise((r) =>
            setTimeout(r, Math.min(thinkMs, Math.max(0, deadline - performance.now()))),
          );
      }
    });

    await Promise.all([publisher, ...sessions]);
    const elapsed = (performance.now() - started) / 1000;
    // let the consumers drain what was published in the last instants
    const countOf = async () => {
      const row = await platform.infra.db.kysely
        .selectFrom('feedback_confidence')
        .select((eb) => eb.fn.sum<number>('conf_count').as('n'))
        .where('tag', '=', tag)
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    };
    const drainUntil = performance.now() + 30_000;
    let counted = 0;
    while (performance.now() < drainUntil) {
      counted = await countOf();
      if (received >= sent - publishErrors && counted >= sent) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    let applied = 0;
    for (let tries = 0; tries < 100; tries++) {
      const devices = await platform.fleet.list(ctx, { tag });
      applied = devices.filter((d) => d.fps === lastSeq.get(Number(d.id.slice(tag.length + 1)))).length;
      if (applied === lastSeq.size) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // a late duplicate would show here
    await new Promise((r) => setTimeout(r, 500));
    counted = await countOf();
    await probe.close();
    return {
      seconds: elapsed,
      sessions: sessionCount,
      sent,
      publishErrors,
      received,
      duplicates,
      telemetryLatency,
      chatLatency,
      chatErrors,
      conversations,
      counted,
      applied,
      devices: lastSeq.size,
    };
  }

  const baselineSeconds = Math.min(10, Math.max(2, SECONDS / 6));
  const baseRate = Math.max(1, Math.round(RATE / 20));
  let base: PhaseResult;
  let warmProblems: string[] = [];
  let load: PhaseResult;
  const loadAverages: number[][] = [];
  const mb = () => process.memoryUsage().rss / 2 ** 20;
  let rssIdle = 0;
  let rssPeak = 0;
  try {
    rssIdle = mb();
    // a short warm-up (JIT, SQLite caches) so the baseline is not measured cold
    const warm = await phase('warm', 1, 1, baseRate, 0);
    base = await phase('base', baselineSeconds, 1, baseRate, 0);
    warmProblems = problems('warm-up', warm);
    const sampler = setInterval(() => loadAverages.push(loadavg()), 5000);
    const rssSampler = setInterval(() => (rssPeak = Math.max(rssPeak, mb())), 250);
    try {
      load = await phase('load', SECONDS, SESSIONS, RATE, THINK_MS);
    } finally {
      clearInterval(sampler);
      clearInterval(rssSampler);
    }
    loadAverages.push(loadavg());
  } finally {
    await harness.close();
    await platform.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const lost = load.sent - load.publishErrors - load.received;
  const results: BenchReport['results'] = [
    { label: `chat sessions (concurrent)`, value: SESSIONS, unit: 'sessions' },
    { label: 'chat conversations completed', value: load.conversations, unit: 'conversations' },
    { label: 'chat p50 (plan + read step + report)', value: percentile(load.chatLatency, 50), unit: 'ms' },
    { label: 'chat p99', value: percentile(load.chatLatency, 99), unit: 'ms' },
    { label: 'chat errors', value: load.chatErrors, unit: 'errors' },
    { label: 'telemetry published', value: load.sent, unit: 'messages' },
    { label: 'telemetry achieved rate', value: load.sent / load.seconds, unit: 'msgs/s' },
    { label: 'telemetry publish→consume p50', value: percentile(load.telemetryLatency, 50), unit: 'ms' },
    { label: 'telemetry publish→consume p99', value: percentile(load.telemetryLatency, 99), unit: 'ms' },
    { label: 'telemetry lost', value: lost, unit: 'messages' },
    { label: 'telemetry duplicated', value: load.duplicates, unit: 'messages' },
    { label: 'heartbeats the platform counted', value: load.counted, unit: `of ${load.sent}` },
    {
      label: 'devices whose last heartbeat the platform applied',
      value: load.applied,
      unit: `of ${load.devices}`,
    },
    { label: 'baseline chat p50 (1 session)', value: percentile(base.chatLatency, 50), unit: 'ms' },
    {
      label: `baseline telemetry publish→consume p50 (${baseRate} msgs/s)`,
      value: percentile(base.telemetryLatency, 50),
      unit: 'ms',
    },
    {
      label: 'resident memory of this process (platform + load generator) started, before load',
      value: rssIdle,
      unit: 'MB RSS',
    },
    { label: 'resident memory of this process, peak under the load', value: rssPeak, unit: 'MB RSS' },
  ];
  const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
  const ratios: BenchReport['ratios'] = [
    {
      label: 'chat p50 under load / chat p50 alone (baseline)',
      value: ratio(percentile(load.chatLatency, 50), percentile(base.chatLatency, 50)),
    },
    {
      label: 'chat p99 under load / chat p99 alone (baseline)',
      value: ratio(percentile(load.chatLatency, 99), percentile(base.chatLatency, 99)),
    },
    {
      label: 'telemetry p50 under load / at a twentieth of the rate (baseline)',
      value: ratio(percentile(load.telemetryLatency, 50), percentile(base.telemetryLatency, 50)),
    },
    { label: 'telemetry achieved / target rate', value: load.sent / load.seconds / RATE, target: '≥ 0.95' },
    { label: 'lost + duplicated telemetry messages', value: lost + load.duplicates, target: '= 0' },
    { label: 'chat errors + publish errors', value: load.chatErrors + load.publishErrors, target: '= 0' },
  ];
  const notes = [
    `${SECONDS} s, ${SESSIONS} concurrent chat sessions (rules planner, read steps, SQLite checkpointer and audit; ${THINK_MS} ms between an answer and the next message), ${RATE} device.heartbeat msgs/s over ${DEVICES} devices through the in-process broker into the platform's fleet, training and feedback consumers; baseline: ${baselineSeconds.toFixed(1)} s with 1 session (back to back) and ${baseRate} msgs/s on the same platform`,
    `load average (1 min) during the run: ${loadAverages.map((l) => l[0]!.toFixed(1)).join(' ')} on ${cpus().length} cores`,
  ];
  const failed = [...warmProblems, ...problems('baseline', base), ...problems('load', load)];
  if (failed.length > 0) throw new Error(`load run failed: ${failed.join('; ')}`);
  return { name: 'load', results, ratios, notes };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = await run();
  for (const r of report.results)
    process.stdout.write(
      `${r.label}: ${Number.isInteger(r.value) ? r.value : r.value.toFixed(2)} ${r.unit}\n`,
    );
  for (const r of report.ratios)
    process.stdout.write(
      `ratio ${r.label}: ${r.value.toFixed(3)}${r.target ? ` (target ${r.target})` : ''}\n`,
    );
  for (const n of report.notes ?? []) process.stdout.write(`note: ${n}\n`);
}
