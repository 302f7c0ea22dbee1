import { AgentRuntime } from '../agent/runtime.js';
import { toolServicesFixture } from '../tools/services.fixtures.js';
import type { Planner } from '../agent/planner.js';
import { RulesPlanner } from '../agent/rules-planner.js';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import type { CallContext, Role } from '../core/context.js';
import { EventBus } from '../core/events.js';
import type { Db } from '../services/infra/db/port.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { silentLogger, type Logger } from '../core/log.js';
import { ToolRegistry } from '../tools/registry.js';
import type { ToolServices } from '../tools/services.js';
import { SimPlatform } from './sim-platform.js';

/** An embedded agent over a simulated platform: real database, approvals, audit, checkpointer and graph. */
export interface AgentHarness {
  db: Db;
  sim: SimPlatform;
  audit: AuditLog;
  approvals: ApprovalService;
  registry: ToolRegistry;
  services: ToolServices;
  runtime: AgentRuntime;
  /** A call context for a user of the harness project. */
  ctx(userId: string, role: Role): CallContext;
  close(): Promise<void>;
}

/** Options of a harness: a database file (kept across restarts), planner, approval mode, simulation. */
export interface AgentHarnessOptions {
  file?: string;
  planner?: Planner;
  approvalMode?: 'mutating' | 'every-step';
  sim?: SimPlatform;
  strict?: boolean;
  log?: Logger;
}

/** Builds an AgentHarness (the database is migrated; the runtime is started). */
export async function createAgentHarness(opts: AgentHarnessOptions = {}): Promise<AgentHarness> {
  const log = opts.log ?? silentLogger();
  const db = new SqliteDb({ file: opts.file ?? ':memory:' });
  await db.migrate();
  const sim = opts.sim ?? new SimPlatform();
  const registry = new ToolRegistry(sim.tools());
  const audit = new AuditLog({ db, log });
  const approvalEvents = new EventBus<ApprovalEvent>();
  const approvals = new ApprovalService({
    db,
    audit,
    events: approvalEvents,
    log,
    strict: opts.strict ?? false,
    ttlMs: 24 * 3_600_000,
    validateArgs: (tool, args) => registry.parseInput(tool, args),
  });
  // the simulated platform's tools call no service; only approvals and audit are real
  const services: ToolServices = toolServicesFixture({ approvals, audit });
  const runtime = new AgentRuntime({
    db: db.kysely,
    registry,
    services,
    planner: opts.planner ?? new RulesPlanner(),
    catalog: sim.catalog(),
    log,
    approvalMode: opts.approvalMode,
    waitSources: sim.waitSources(),
    domainEvents: [approvalEvents, sim.events],
    pollIntervalMs: 0,
  });
  await runtime.start();
  return {
    db,
    sim,
    audit,
    approvals,
    registry,
    services,
    runtime,
    ctx: (userId, role) => ({
      user: { userId, email: `${userId}@example.test`, name: userId, role, kind: 'user' },
      projectId: sim.projectId,
      requestId: `req-${userId}`,
      log,
    }),
    close: async () => {
      await runtime.stop();
      await db.close();
    },
  };
}
