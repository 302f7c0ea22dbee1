import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toolServicesFixture } from './services.fixtures.js';
import { z } from 'zod';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import { EventBus } from '../core/events.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { silentLogger } from '../core/log.js';
import { defineTool, type ToolContext } from './define.js';
import { ToolRegistry } from './registry.js';
import { runTool } from './run-tool.js';
import { settleOrphanedRuns } from './orphaned-runs.js';

const log = silentLogger();
const LEASE_MS = 200;

/**
 * Exactly-once across crashes: a process that consumed an approval and died before recording the
 * result is simulated by a second ApprovalService (another process instance) on the same database.
 */
describe('runTool after a crash (exactly-once effects)', () => {
  let db: SqliteDb;
  let audit: AuditLog;
  let registry: ToolRegistry;
  let created: Map<string, string>;
  let runs: Array<{ tool: string; key: string | undefined }>;
  let gate: Promise<void> | undefined;

  const approvalsFor = () =>
    new ApprovalService({
      db,
      audit,
      events: new EventBus<ApprovalEvent>(),
      log,
      strict: false,
      ttlMs: 3_600_000,
      executionLeaseMs: LEASE_MS,
    });

  const ctxFor = (approvals: ApprovalService): ToolContext => ({
    user: { userId: 'u_op', email: 'op@x.test', name: 'Olga', role: 'operator', kind: 'user' },
    projectId: 'p1',
    requestId: 'req-1',
    threadId: 'thr_1',
    log,
    services: toolServicesFixture({ approvals, audit }),
    registry,
  });

  beforeEach(async () => {
    db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
    audit = new AuditLog({ db, log });
    created = new Map();
    runs = [];
    gate = undefined;
    registry = new ToolRegistry([
      defineTool({
        name: 'create_thing',
        title: 'Create a thing',
        description: 'Creates a thing, once per idempotency key (a resumable write tool for tests).',
        input: z.object({ name: z.string().describe('name of the thing') }),
        output: z.object({ id: z.string().describe('id of the thing') }),
        risk: 'write',
        idempotent: false,
        resumable: true,
        run: async (ctx, input) => {
          runs.push({ tool: 'create_thing', key: ctx.idempotencyKey });
          if (gate !== undefined) await gate;
          const key = ctx.idempotencyKey ?? 'none';
          if (!created.has(key)) created.set(key, `thing_${created.size + 1}_${input.name}`);
          return { id: created.get(key)! };
        },
      }),
      defineTool({
        name: 'flip_switch',
        title: 'Flip a switch',
        description:
          'Flips a switch; cannot tell whether it already ran (a non-resumable write tool for tests).',
        input: z.object({ on: z.boolean().describe('position') }),
        output: z.object({ on: z.boolean().describe('position') }),
        risk: 'write',
        idempotent: false,
        checkAfterInterruption: 'look at the switch on the wall',
        run: async (ctx, input) => {
          runs.push({ tool: 'flip_switch', key: ctx.idempotencyKey });
          return input;
        },
      }),
    ]);
  });

  afterEach(async () => {
    await db.close();
  });

  /** An approved request that a first process consumed (recording "started") and then died before its result. */
  async function consumedByADeadProcess(
    tool: string,
    args: Record<string, unknown>,
    threadId: string | null = 'thr_1',
  ): Promise<string> {
    const dead = approvalsFor();
    // a call outside a conversation (REST, MCP) carries no thread
    const { threadId: _conversation, ...outside } = ctxFor(dead);
    const ctx = threadId === null ? outside : { ...outside, threadId };
    const thread = threadId === null ? {} : { threadId };
    const req = await dead.request(ctx, { tool, args, risk: 'write', reason: 'test', ...thread });
    await dead.decide(ctx, req.id, { decision: 'approve' });
    await dead.consume(ctx, { approvalId: req.id, tool, args, risk: 'write', ...thread });
    return req.id;
  }

  it('resumes a resumable step whose process died after consuming the approval: it runs under the same key and finishes', async () => {
    const approvalId = await consumedByADeadProcess('create_thing', { name: 'a' });
    const restarted = approvalsFor();
    const result = await runTool(ctxFor(restarted), 'create_thing', { name: 'a' }, { approvalId });
    expect(result).toEqual({ ok: true, output: { id: 'thing_1_a' }, resumed: true });
    expect(runs).toEqual([{ tool: 'create_thing', key: approvalId }]);
    expect(await restarted.execution(ctxFor(restarted), approvalId)).toMatchObject({
      status: 'finished',
      attempt: 2,
      output: { id: 'thing_1_a' },
    });
    // asked again (another resume of the conversation), it replays and runs nothing
    expect(await runTool(ctxFor(approvalsFor()), 'create_thing', { name: 'a' }, { approvalId })).toEqual({
      ok: true,
      output: { id: 'thing_1_a' },
      replayed: true,
    });
    expect(runs).toHaveLength(1);
    const { entries } = await audit.query({ projectId: 'p1', threadId: 'thr_1' });
    expect(entries.map((e) => e.action)).toEqual([
      'approval.requested',
      'approval.decided',
      'approval.consumed',
      'tool.started',
      'tool.resumed',
      'tool.finished',
    ]);
    expect((await audit.verify('p1')).ok).toBe(true);
  });

  it('a crash in the middle of a resumable tool (effect made, result not recorded) returns the first effect, not a second one', async () => {
    const approvalId = await consumedByADeadProcess('create_thing', { name: 'b' });
    created.set(approvalId, 'thing_made_before_the_crash');
    const result = await runTool(ctxFor(approvalsFor()), 'create_thing', { name: 'b' }, { approvalId });
    expect(result).toMatchObject({ ok: true, output: { id: 'thing_made_before_the_crash' } });
    expect(created.size).toBe(1);
  });

  it('marks a non-resumable step interrupted with what to check, never runs it blindly, and keeps saying so', async () => {
    const approvalId = await consumedByADeadProcess('flip_switch', { on: true });
    const restarted = approvalsFor();
    const result = await runTool(ctxFor(restarted), 'flip_switch', { on: true }, { approvalId });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('conflict');
    expect(result.error.message).toMatch(/^interrupted: unknown outcome/);
    expect(result.error.message).toContain('look at the switch on the wall');
    expect(result.error.details).toMatchObject({ outcome: 'unknown', approvalId });
    expect(runs).toEqual([]);
    expect(await restarted.execution(ctxFor(restarted), approvalId)).toMatchObject({ status: 'interrupted' });
    const again = await runTool(ctxFor(approvalsFor()), 'flip_switch', { on: true }, { approvalId });
    expect(again).toMatchObject({ ok: false, error: { message: result.error.message } });
    expect(runs).toEqual([]);
    const { entries } = await audit.query({ projectId: 'p1', action: 'tool.interrupted' });
    expect(entries).toHaveLength(1);
  });

  it('a second process asking for a step that is still running waits for its result instead of running it again', async () => {
    const first = approvalsFor();
    const ctx1 = ctxFor(first);
    const req = await first.request(ctx1, {
      tool: 'create_thing',
      args: { name: 'c' },
      risk: 'write',
      reason: 'test',
      threadId: 'thr_1',
    });
    await first.decide(ctx1, req.id, { decision: 'approve' });
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const running = runTool(ctx1, 'create_thing', { name: 'c' }, { approvalId: req.id });
    await new Promise((r) => setTimeout(r, 50));
    const second = runTool(ctxFor(approvalsFor()), 'create_thing', { name: 'c' }, { approvalId: req.id });
    // longer than the lease: the running process renews it, so the second one must not take over
    await new Promise((r) => setTimeout(r, LEASE_MS * 3));
    release();
    expect(await running).toEqual({ ok: true, output: { id: 'thing_1_c' } });
    expect(await second).toEqual({ ok: true, output: { id: 'thing_1_c' }, replayed: true });
    expect(runs).toHaveLength(1);
  });

  it('settles calls made outside a conversation (REST, MCP) whose process died; conversations are left to the agent', async () => {
    const olderConversation = await consumedByADeadProcess('create_thing', { name: 'older chat' });
    const viaRest = await consumedByADeadProcess('create_thing', { name: 'rest' }, null);
    const viaMcp = await consumedByADeadProcess('flip_switch', { on: false }, null);
    const inConversation = await consumedByADeadProcess('create_thing', { name: 'chat' });
    await new Promise((r) => setTimeout(r, LEASE_MS + 50));
    const restarted = approvalsFor();
    const tools = { registry, services: toolServicesFixture({ approvals: restarted, audit }) };
    // even when a sweep's worth of conversation runs are older (they are the agent's to resume)
    expect(await settleOrphanedRuns(tools, log, 1)).toEqual({ resumed: [viaRest], closed: [] });
    const sweep = await settleOrphanedRuns(tools, log);
    expect(sweep).toEqual({ resumed: [], closed: [viaMcp] });
    expect(runs).toEqual([{ tool: 'create_thing', key: viaRest }]);
    const ctx = ctxFor(restarted);
    expect(await restarted.execution(ctx, viaRest)).toMatchObject({ status: 'finished', attempt: 2 });
    expect(await restarted.execution(ctx, viaMcp)).toMatchObject({
      status: 'interrupted',
      error: { message: expect.stringContaining('look at the switch on the wall') },
    });
    for (const run of [olderConversation, inConversation])
      expect(await restarted.execution(ctx, run)).toMatchObject({ status: 'started', attempt: 1 });
    // settled runs are not found again
    expect(await settleOrphanedRuns(tools, log)).toEqual({ resumed: [], closed: [] });
    expect((await audit.verify('p1')).ok).toBe(true);
  });

  it('never reports a used approval for a different call: other arguments get the refusal', async () => {
    const approvalId = await consumedByADeadProcess('create_thing', { name: 'd' });
    const result = await runTool(ctxFor(approvalsFor()), 'create_thing', { name: 'other' }, { approvalId });
    expect(result).toMatchObject({ ok: false, error: { code: 'conflict' } });
    expect(runs).toEqual([]);
  });
});
