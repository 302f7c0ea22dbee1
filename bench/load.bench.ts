import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAgentHarness } from '../evals/harness.js';
import { loadConfig } from '../services/config.js';
import { systemPrincipal } from '../services/context.js';
import { STREAMS, makeEnvelope, type MessagePayload } from '../services/infra/broker/index.js';
import { silentLogger } from '../services/log.js';
import { createPlatform } from '../services/platform.js';
import type { BenchReport } from './run-all.js';

/** Seconds of load (LOAD_SECONDS, default 60), chat sessions (LOAD_SESSIONS, default 100), telemetry rate (LOAD_RATE, default 1000/s). */
const SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
const SESSIONS = Number(process.env.LOAD_SESSIONS ?? 100);
const RATE = Number(process.env.LOAD_RATE ?? 1000);
const DEVICES = 50;
const MESSAGES = ['list datasets', 'show the models', 'list devices on line-3', 'what training jobs are there', 'show pending approvals'];

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function heartbeat(device: number, seq: number): MessagePayload<'device.heartbeat'> {
  return {
    deviceId: `load-${device}`,
    name: `load device ${device}`,
    tags: ['line-load'],
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

/**
 * 100 concurrent chat sessions through the agent runtime (rules planner, real graph, checkpointer
 * and audit on SQLite) while 1,000 telemetry messages/s flow through the broker port into the
 * platform's consumers, for LOAD_SECONDS: errors, lost messages, and p50/p99 latencies.
 */
export async function run(): Promise<BenchReport> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vbench-load-'));
  const log = silentLogger();
  const platform = await createPlatform(
    loadConfig({ DATA_DIR: path.join(dir, 'platform'), LOG_LEVEL: 'silent', EMBEDDED_GPU_RUNNER: 'false', SIMULATED_DEVICES: '0', DEMO_DATASET: 'false' }, dir),
    log,
  );
  await platform.start();
  const harness = await createAgentHarness({ file: path.join(dir, 'agent.db') });
  const broker = platform.infra.broker;

  const sentAt = new Map<string, number>();
  const telemetryLatency: number[] = [];
  let received = 0;
  let duplicates = 0;
  const seen = new Set<string>();
  const probe = await broker.subscribe(STREAMS.telemetry, { from: 'next' }, (m) => {
    if (!m.id.startsWith('load-')) return;
    if (seen.has(m.id)) duplicates++;
    seen.add(m.id);
    received++;
    const t = sentAt.get(m.id);
    if (t !== undefined) telemetryLatency.push(performance.now() - t);
  });

  const deadline = performance.now() + SECONDS * 1000;
  let sent = 0;
  let publishErrors = 0;
  const lastSeq = new Map<number, number>();
  const started = performance.now();
  const publisher = (async () => {
    while (performance.now() < deadline) {
      const due = Math.floor(((performance.now() - started) / 1000) * RATE) - sent;
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < due; i++) {
        const seq = sent++;
        const device = seq % DEVICES;
        lastSeq.set(device, seq);
        const id = `load-${seq}`;
        sentAt.set(id, performance.now());
        batch.push(broker.publish(STREAMS.telemetry, makeEnvelope('device.heartbeat', heartbeat(device, seq), { source: 'load-bench', id })).catch(() => void publishErrors++));
      }
      await Promise.all(batch);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();

  const chatLatency: number[] = [];
  let chatErrors = 0;
  let conversations = 0;
  const sessions = Array.from({ length: SESSIONS }, async (_, i) => {
    const ctx = harness.ctx(`load-user-${i}`, 'operator');
    for (let turn = 0; performance.now() < deadline; turn++) {
      // each turn arrives as its own I/O event, as a socket or HTTP message would
      await new Promise((r) => setImmediate(r));
      const t0 = performance.now();
      try {
        const view = await harness.runtime.startConversation(ctx, { message: MESSAGES[(i + turn) % MESSAGES.length]! });
        if (view.status === 'failed') chatErrors++;
        conversations++;
      } catch {
        chatErrors++;
      }
      chatLatency.push(performance.now() - t0);
    }
  });

  await Promise.all([publisher, ...sessions]);
  const elapsed = (performance.now() - started) / 1000;
  // let the consumers drain what was published in the last instants
  const drainUntil = performance.now() + 15_000;
  while (received < sent - publishErrors && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));

  const ctx = { user: systemPrincipal(), projectId: 'default', requestId: 'load', log };
  let applied = 0;
  for (let tries = 0; tries < 100; tries++) {
    const devices = await platform.fleet.list(ctx, { tag: 'line-load' });
    applied = devices.filter((d) => d.fps === lastSeq.get(Number(d.id.slice('load-'.length)))).length;
    if (applied === lastSeq.size) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  await probe.close();
  await harness.close();
  await platform.close();
  rmSync(dir, { recursive: true, force: true });

  const lost = sent - publishErrors - received;
  const results: BenchReport['results'] = [
    { label: `chat sessions (concurrent)`, value: SESSIONS, unit: 'sessions' },
    { label: 'chat conversations completed', value: conversations, unit: 'conversations' },
    { label: 'chat p50 (plan + read step + report)', value: percentile(chatLatency, 50), unit: 'ms' },
    { label: 'chat p99', value: percentile(chatLatency, 99), unit: 'ms' },
    { label: 'chat errors', value: chatErrors, unit: 'errors' },
    { label: 'telemetry published', value: sent, unit: 'messages' },
    { label: 'telemetry achieved rate', value: sent / elapsed, unit: 'msgs/s' },
    { label: 'telemetry publish→consume p50', value: percentile(telemetryLatency, 50), unit: 'ms' },
    { label: 'telemetry publish→consume p99', value: percentile(telemetryLatency, 99), unit: 'ms' },
    { label: 'telemetry lost', value: lost, unit: 'messages' },
    { label: 'telemetry duplicated', value: duplicates, unit: 'messages' },
    { label: 'devices whose last heartbeat the platform applied', value: applied, unit: `of ${lastSeq.size}` },
  ];
  const ratios: BenchReport['ratios'] = [
    { label: 'telemetry achieved / target rate', value: sent / elapsed / RATE, target: '≥ 0.95' },
    { label: 'lost + duplicated telemetry messages', value: lost + duplicates, target: '= 0' },
    { label: 'chat errors + publish errors', value: chatErrors + publishErrors, target: '= 0' },
    { label: 'devices up to date / devices', value: lastSeq.size === 0 ? 0 : applied / lastSeq.size, target: '= 1' },
  ];
  const notes = [
    `${SECONDS} s, ${SESSIONS} concurrent chat sessions (rules planner, read steps, SQLite checkpointer and audit), ${RATE} device.heartbeat msgs/s over ${DEVICES} devices through the in-process broker into the platform's fleet, training and feedback consumers`,
    `load average during the run: ${loadavg().map((x) => x.toFixed(1)).join(' / ')}`,
  ];
  return { name: 'load', results, ratios, notes };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = await run();
  for (const r of report.results) process.stdout.write(`${r.label}: ${Number.isInteger(r.value) ? r.value : r.value.toFixed(2)} ${r.unit}\n`);
  for (const r of report.ratios) process.stdout.write(`ratio ${r.label}: ${r.value.toFixed(3)}${r.target ? ` (target ${r.target})` : ''}\n`);
  for (const n of report.notes ?? []) process.stdout.write(`note: ${n}\n`);
}
