import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toolServicesFixture } from '../../tools/services.fixtures.js';
import { z } from 'zod';
import { ApprovalService } from '../../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../../services/approvals/events.js';
import { AuditLog } from '../../services/audit/audit-log.js';
import type { Role } from '../../core/context.js';
import { isPlatformError } from '../../core/errors.js';
import { EventBus } from '../../core/events.js';
import { SqliteDb } from '../../services/infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import {
  decideApproval,
  defineTool,
  runTool,
  ToolRegistry,
  type ToolContext,
  type ToolResult,
} from '../../tools/index.js';

const log = silentLogger();
const HOUR = 3_600_000;

describe('approvals cannot be replayed, outlived or self-granted (through runTool)', () => {
  let db: SqliteDb;
  let audit: AuditLog;
  let registry: ToolRegistry;
  let runs: Array<{ tool: string; args: Record<string, unknown> }>;
  let clock: number;

  const mutating = (name: string, risk: 'write' | 'critical') =>
    defineTool({
      name,
      title: name,
      description: `A ${risk} tool for the approval security tests; records each run.`,
      input: z.object({
        target: z.string().min(1).describe('what it acts on'),
        count: z.number().int().default(1).describe('how many'),
      }),
      output: z.object({ run: z.number().describe('run number') }),
      risk,
      idempotent: false,
      run: async (_ctx, args) => {
        runs.push({ tool: name, args });
        return { run: runs.length };
      },
    });

  function approvalsService(strict: boolean): ApprovalService {
    return new ApprovalService({
      db,
      audit,
      events: new EventBus<ApprovalEvent>(),
      log,
      strict,
      ttlMs: HOUR,
      now: () => clock,
      validateArgs: (tool, args) => registry.parseInput(tool, args),
    });
  }

  function ctxFor(
    approvals: ApprovalService,
    userId: string,
    role: Role,
    threadId = 'thread-1',
  ): ToolContext {
    return {
      user: { userId, email: `${userId}@x.test`, name: userId, role, kind: 'user' },
      projectId: 'p1',
      requestId: `req-${userId}`,
      threadId,
      log,
      services: toolServicesFixture({ approvals, audit }),
      registry,
    };
  }

  async function approved(
    approvals: ApprovalService,
    tool: string,
    args: Record<string, unknown>,
    requester: ToolContext,
    approver: ToolContext,
  ): Promise<string> {
    const req = await approvals.request(requester, {
      tool,
      args: registry.parseInput(tool, args),
      risk: registry.get(tool).risk as 'write' | 'critical',
      reason: 'test',
      threadId: requester.threadId,
    });
    await approvals.decide(approver, req.id, { decision: 'approve' });
    return req.id;
  }

  function refusedWith(result: ToolResult, codes: string[]): void {
    expect(result.ok, JSON.stringify(result)).toBe(false);
    if (!result.ok) expect(codes).toContain(result.error.code);
  }

  beforeEach(async () => {
    db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
    audit = new AuditLog({ db, log });
    runs = [];
    clock = Date.UTC(2026, 0, 1);
    registry = new ToolRegistry([
      mutating('start_job', 'write'),
      mutating('stop_job', 'write'),
      mutating('deploy_model', 'critical'),
      decideApproval,
    ]);
  });

  afterEach(async () => {
    await db.close();
  });

  it('an approval for one set of arguments runs nothing for other arguments, another tool or another thread', async () => {
    const approvals = approvalsService(false);
    const alice = ctxFor(approvals, 'alice', 'operator');
    const id = await approved(approvals, 'start_job', { target: 'helmets' }, alice, alice);

    refusedWith(await runTool(alice, 'start_job', { target: 'everything' }, { approvalId: id }), [
      'conflict',
      'forbidden',
      'invalid_input',
      'approval_required',
    ]);
    refusedWith(await runTool(alice, 'start_job', { target: 'helmets', count: 2 }, { approvalId: id }), [
      'conflict',
      'forbidden',
      'invalid_input',
      'approval_required',
    ]);
    refusedWith(await runTool(alice, 'stop_job', { target: 'helmets' }, { approvalId: id }), [
      'conflict',
      'forbidden',
      'invalid_input',
      'approval_required',
    ]);
    refusedWith(
      await runTool(
        ctxFor(approvals, 'alice', 'operator', 'thread-2'),
        'start_job',
        { target: 'helmets' },
        { approvalId: id },
      ),
      ['conflict', 'forbidden', 'invalid_input', 'approval_required'],
    );
    refusedWith(
      await runTool({ ...alice, projectId: 'p2' }, 'start_job', { target: 'helmets' }, { approvalId: id }),
      ['not_found', 'forbidden', 'approval_required'],
    );
    expect(runs).toEqual([]);

    // the defaults are part of the hash: { target } and { target, count: 1 } are the same call
    const ok = await runTool(alice, 'start_job', { target: 'helmets', count: 1 }, { approvalId: id });
    expect(ok).toMatchObject({ ok: true, output: { run: 1 } });
    expect(runs).toEqual([{ tool: 'start_job', args: { target: 'helmets', count: 1 } }]);
  });

  it('a used approval never runs the tool again, and is not reported as success for different arguments or threads', async () => {
    const approvals = approvalsService(false);
    const alice = ctxFor(approvals, 'alice', 'operator');
    const id = await approved(approvals, 'start_job', { target: 'helmets' }, alice, alice);
    expect(await runTool(alice, 'start_job', { target: 'helmets' }, { approvalId: id })).toMatchObject({
      ok: true,
    });

    // a resumed agent step repeating the same call gets the recorded output, without a second run
    expect(await runTool(alice, 'start_job', { target: 'helmets' }, { approvalId: id })).toMatchObject({
      ok: true,
      replayed: true,
      output: { run: 1 },
    });

    refusedWith(await runTool(alice, 'start_job', { target: 'all-lines' }, { approvalId: id }), [
      'conflict',
      'forbidden',
      'invalid_input',
      'approval_required',
    ]);
    refusedWith(
      await runTool(
        ctxFor(approvals, 'mallory', 'operator', 'thread-9'),
        'start_job',
        { target: 'helmets' },
        { approvalId: id },
      ),
      ['conflict', 'forbidden', 'invalid_input', 'approval_required'],
    );
    expect(runs).toHaveLength(1);
  });

  it('an expired approval does nothing, and an expired request cannot be approved', async () => {
    const approvals = approvalsService(false);
    const alice = ctxFor(approvals, 'alice', 'operator');
    const id = await approved(approvals, 'start_job', { target: 'helmets' }, alice, alice);
    clock += HOUR + 1;
    refusedWith(await runTool(alice, 'start_job', { target: 'helmets' }, { approvalId: id }), [
      'conflict',
      'forbidden',
      'approval_required',
    ]);
    expect(runs).toEqual([]);
    expect((await approvals.get(alice, id)).status).toBe('expired');

    const pending = await approvals.request(alice, {
      tool: 'start_job',
      args: registry.parseInput('start_job', { target: 'x' }),
      risk: 'write',
      reason: 'late',
      threadId: 'thread-1',
    });
    clock += HOUR + 1;
    const late = await runTool(alice, 'decide_approval', { approvalId: pending.id, decision: 'approve' });
    const status = (await approvals.get(alice, pending.id)).status;
    expect(late.ok === false || status === 'expired').toBe(true);
    expect(status).toBe('expired');
    refusedWith(await runTool(alice, 'start_job', { target: 'x' }, { approvalId: pending.id }), [
      'conflict',
      'forbidden',
      'approval_required',
    ]);
    expect(runs).toEqual([]);
  });

  it('in strict mode a critical step cannot be approved by its requester, even an admin, through the decide_approval tool', async () => {
    const approvals = approvalsService(true);
    const ann = ctxFor(approvals, 'ann', 'admin');
    const bob = ctxFor(approvals, 'bob', 'approver');
    const oscar = ctxFor(approvals, 'oscar', 'operator');
    const req = await approvals.request(ann, {
      tool: 'deploy_model',
      args: registry.parseInput('deploy_model', { target: 'line-3' }),
      risk: 'critical',
      reason: 'ship',
      threadId: 'thread-1',
    });

    refusedWith(await runTool(ann, 'decide_approval', { approvalId: req.id, decision: 'approve' }), [
      'forbidden',
    ]);
    refusedWith(
      await runTool(ann, 'decide_approval', {
        approvalId: req.id,
        decision: 'edit',
        args: { target: 'line-3', count: 2 },
      }),
      ['forbidden'],
    );
    refusedWith(await runTool(oscar, 'decide_approval', { approvalId: req.id, decision: 'approve' }), [
      'forbidden',
    ]);
    expect((await approvals.get(ann, req.id)).status).toBe('pending');
    refusedWith(await runTool(ann, 'deploy_model', { target: 'line-3' }, { approvalId: req.id }), [
      'conflict',
      'forbidden',
      'approval_required',
    ]);
    expect(runs).toEqual([]);

    expect(await runTool(bob, 'decide_approval', { approvalId: req.id, decision: 'approve' })).toMatchObject({
      ok: true,
    });
    expect(await runTool(ann, 'deploy_model', { target: 'line-3' }, { approvalId: req.id })).toMatchObject({
      ok: true,
    });
    expect(runs).toEqual([{ tool: 'deploy_model', args: { target: 'line-3', count: 1 } }]);
  });

  it('without strict mode the requester may approve a write step but an operator never a critical one', async () => {
    const approvals = approvalsService(false);
    const oscar = ctxFor(approvals, 'oscar', 'operator');
    const req = await approvals.request(oscar, {
      tool: 'deploy_model',
      args: registry.parseInput('deploy_model', { target: 'line-3' }),
      risk: 'critical',
      reason: 'ship',
      threadId: 'thread-1',
    });
    refusedWith(await runTool(oscar, 'decide_approval', { approvalId: req.id, decision: 'approve' }), [
      'forbidden',
    ]);
    refusedWith(
      await runTool(ctxFor(approvals, 'vic', 'viewer'), 'decide_approval', {
        approvalId: req.id,
        decision: 'approve',
      }),
      ['forbidden'],
    );
    refusedWith(await runTool(oscar, 'deploy_model', { target: 'line-3' }, { approvalId: req.id }), [
      'conflict',
      'forbidden',
      'approval_required',
    ]);
    expect(runs).toEqual([]);
    expect(
      isPlatformError(
        await approvals.decide(oscar, req.id, { decision: 'approve' }).catch((e: unknown) => e),
        'forbidden',
      ),
    ).toBe(true);
  });
});
