import { mkdtempSync, rmSync } from 'node:fs';
import { toolServicesFixture } from '../tools/services.fixtures.js';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemorySaver } from '@langchain/langgraph';
import type { BaseCheckpointSaver } from '@langchain/langgraph-checkpoint';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import { z } from 'zod';
import { AgentRuntime } from '../agent/runtime.js';
import type { Plan } from '../agent/plan.js';
import type { Planner } from '../agent/planner.js';
import { StaticCatalog } from '../agent/static-catalog.js';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import type { CallContext } from '../core/context.js';
import { EventBus } from '../core/events.js';
import type { Db } from '../services/infra/db/port.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { silentLogger } from '../core/log.js';
import { defineTool } from '../tools/define.js';
import { ToolRegistry } from '../tools/registry.js';
import type { AuditApi, ToolServices } from '../tools/services.js';
import type { BenchReport } from './run-all.js';

const STEPS = 10;
const CONVERSATIONS = 25;
const log = silentLogger();

const noop = (name: string, risk: 'read' | 'write') =>
  defineTool({
    name,
    title: name,
    description: `Does nothing (${risk}); measures the agent's own overhead per step.`,
    input: z.object({ n: z.number().int().describe('step number') }),
    output: z.object({ n: z.number().int().describe('step number') }),
    risk,
    idempotent: true,
    run: async (_ctx, input) => input,
  });

const planner = (tool: string): Planner => {
  const plan = (): Plan => ({
    steps: Array.from({ length: STEPS }, (_, n) => ({ tool, args: { n }, reason: `step ${n}` })),
  });
  return { kind: 'rules', plan: async () => plan(), replan: async () => ({ steps: [] }) };
};

const ctx = (): CallContext => ({
  user: { userId: 'bench', email: 'bench@x.test', name: 'bench', role: 'admin', kind: 'user' },
  projectId: 'bench',
  requestId: 'bench',
  log,
});

/** An audit log that keeps nothing: the baseline runs without audit. */
const noAudit: AuditApi = {
  append: async () => undefined,
  query: async () => ({ total: 0, entries: [] }),
  verify: async () => ({ ok: true, checked: 0, problems: [] }),
};

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Which checkpointer a series runs on: MemorySaver without audit (the floor), ours on the platform database, or the official SqliteSaver (its own file) as the peer. */
type Saver = 'memory' | 'ours' | 'official';

function runtimeFor(db: Db, opts: { saver: Saver; tool: string; officialFile?: string }): AgentRuntime {
  const registry = new ToolRegistry([noop('noop_read', 'read'), noop('noop_write', 'write')]);
  const memory = opts.saver === 'memory';
  const audit = memory ? noAudit : new AuditLog({ db, log });
  const approvals = new ApprovalService({
    db,
    audit: audit as AuditLog,
    events: new EventBus<ApprovalEvent>(),
    log,
    strict: false,
    ttlMs: 3_600_000,
  });
  const services: ToolServices = toolServicesFixture({ approvals, audit });
  return new AgentRuntime({
    db: db.kysely,
    registry,
    services,
    planner: planner(opts.tool),
    catalog: new StaticCatalog({}),
    log,
    pollIntervalMs: 0,
    ...(checkpointerFor(opts.saver, opts.officialFile) ?? {}),
  });
}

function checkpointerFor(
  saver: Saver,
  officialFile: string | undefined,
): { checkpointer: BaseCheckpointSaver } | undefined {
  if (saver === 'memory') return { checkpointer: new MemorySaver() };
  if (saver === 'official') {
    if (officialFile === undefined) throw new Error('the official saver needs a file');
    return { checkpointer: SqliteSaver.fromConnString(officialFile) };
  }
  return undefined;
}

/**
 * Per-step ms of plans of read steps (graph + checkpoint + audit, no approvals): one sample per
 * conversation. The series take turns conversation by conversation, so a busy machine slows them alike.
 */
async function readSteps(db: Db, savers: Saver[], officialFile?: string): Promise<number[][]> {
  const runtimes = savers.map((saver) => runtimeFor(db, { saver, tool: 'noop_read', officialFile }));
  const samples: number[][] = savers.map(() => []);
  for (let i = 0; i < CONVERSATIONS + 3; i++) {
    for (const [k, runtime] of runtimes.entries()) {
      const started = performance.now();
      await runtime.startConversation(ctx(), { message: 'go' });
      if (i >= 3) samples[k]!.push((performance.now() - started) / STEPS);
    }
  }
  return samples;
}

/** Per-step ms of approved write steps: approval decided, graph resumed, approval consumed, tool run, audited, next approval requested. Series take turns per conversation. */
async function approvedSteps(db: Db, savers: Saver[], officialFile?: string): Promise<number[][]> {
  const runtimes = savers.map((saver) => runtimeFor(db, { saver, tool: 'noop_write', officialFile }));
  const samples: number[][] = savers.map(() => []);
  for (let i = 0; i < Math.ceil(CONVERSATIONS / 2) + 1; i++) {
    for (const [k, runtime] of runtimes.entries()) {
      let view = await runtime.startConversation(ctx(), { message: 'go' });
      while (view.pendingApproval !== null) {
        const started = performance.now();
        view = await runtime.decide(ctx(), view.id, {
          approvalId: view.pendingApproval.approvalId,
          decision: 'approve',
        });
        if (i > 0) samples[k]!.push(performance.now() - started);
      }
    }
  }
  return samples;
}

async function mysqlDb(): Promise<{ db: Db; drop: () => Promise<void> } | undefined> {
  const { SERVICE_URLS, createTempMysqlDatabase } = await import('../test/services.fixtures.js');
  const { MysqlDb } = await import('../services/infra/db/mysql.js');
  try {
    const temp = await createTempMysqlDatabase();
    const db = new MysqlDb({ url: temp.url });
    await db.migrate();
    return { db, drop: async () => (await db.close(), await temp.drop()) };
  } catch (err) {
    process.stderr.write(
      `MySQL not reachable at ${SERVICE_URLS.mysql} (${(err as Error).message}); MySQL figures skipped\n`,
    );
    return undefined;
  }
}

/** Agent overhead per step on SQLite and MySQL against MemorySaver without audit, in the same run. */
export async function run(): Promise<BenchReport> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vbench-agent-'));
  const sqlite = new SqliteDb({ file: path.join(dir, 'bench.db') });
  await sqlite.migrate();
  const results: BenchReport['results'] = [];
  const ratios: BenchReport['ratios'] = [];
  const notes: string[] = [
    `${STEPS} no-op steps per conversation, ${CONVERSATIONS} conversations per series`,
  ];
  const officialFile = path.join(dir, 'official-saver.db');
  try {
    const [memRead, oursRead, officialRead] = await readSteps(
      sqlite,
      ['memory', 'ours', 'official'],
      officialFile,
    );
    const [oursApproved, officialApproved] = await approvedSteps(sqlite, ['ours', 'official'], officialFile);
    const baseline = percentile(memRead!, 50);
    const sqliteRead = percentile(oursRead!, 50);
    const peerRead = percentile(officialRead!, 50);
    const sqliteP50 = percentile(oursApproved!, 50);
    const peerP50 = percentile(officialApproved!, 50);
    results.push(
      { label: 'MemorySaver, no audit: p50 per read step', value: baseline, unit: 'ms' },
      { label: 'SQLite, our saver: p50 per read step (checkpoint + audit)', value: sqliteRead, unit: 'ms' },
      {
        label: 'SQLite, official SqliteSaver: p50 per read step (checkpoint + audit)',
        value: peerRead,
        unit: 'ms',
      },
      {
        label: 'SQLite, our saver: p50 per approved write step (checkpoint + writes + audit + approval)',
        value: sqliteP50,
        unit: 'ms',
      },
      { label: 'SQLite, official SqliteSaver: p50 per approved write step', value: peerP50, unit: 'ms' },
      {
        label: 'SQLite, our saver: p95 per approved write step',
        value: percentile(oursApproved!, 95),
        unit: 'ms',
      },
    );
    ratios.push(
      { label: 'SQLite approved step p50 (ms)', value: sqliteP50, target: '≤ 5' },
      {
        label: 'our saver / official SqliteSaver, approved step p50',
        value: sqliteP50 / peerP50,
        target: '≤ 1.0',
      },
      { label: 'our saver / official SqliteSaver, read step p50', value: sqliteRead / peerRead },
      { label: 'SQLite read step / MemorySaver read step', value: sqliteRead / baseline },
    );
    const mysql = await mysqlDb();
    if (mysql !== undefined) {
      try {
        const [mysqlReadSamples] = await readSteps(mysql.db, ['ours']);
        const [mysqlApprovedSamples] = await approvedSteps(mysql.db, ['ours']);
        const mysqlRead = percentile(mysqlReadSamples!, 50);
        const mysqlApproved = percentile(mysqlApprovedSamples!, 50);
        results.push(
          { label: 'MySQL, our saver: p50 per read step (checkpoint + audit)', value: mysqlRead, unit: 'ms' },
          { label: 'MySQL, our saver: p50 per approved write step', value: mysqlApproved, unit: 'ms' },
        );
        ratios.push(
          { label: 'MySQL read step / MemorySaver read step', value: mysqlRead / baseline },
          {
            label: 'MySQL approved step / SQLite approved step (our saver)',
            value: mysqlApproved / sqliteP50,
          },
        );
      } finally {
        await mysql.drop();
      }
    } else notes.push('MySQL figures skipped: server not reachable');
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  notes.push(
    `load average during the run: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' / ')} on this machine`,
  );
  return { name: 'agent', results, ratios, notes };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = await run();
  for (const r of report.results) process.stdout.write(`${r.label}: ${r.value.toFixed(2)} ${r.unit}\n`);
  for (const r of report.ratios)
    process.stdout.write(
      `ratio ${r.label}: ${r.value.toFixed(2)}${r.target ? ` (target ${r.target})` : ''}\n`,
    );
  for (const n of report.notes ?? []) process.stdout.write(`note: ${n}\n`);
}
