import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toolServicesFixture } from '../../tools/services.fixtures.js';
import { z } from 'zod';
import { ApprovalService } from '../../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../../services/approvals/events.js';
import { AuditLog } from '../../services/audit/audit-log.js';
import type { Role } from '../../core/context.js';
import { EventBus } from '../../core/events.js';
import { SqliteDb } from '../../services/infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import { defineTool, runTool, ToolRegistry, type ToolContext } from '../../tools/index.js';

const log = silentLogger();

// Issue 13 item 4: in strict mode an approver edited someone else's pending critical request to
// arbitrary arguments and then ran it on their own approval. An edit now becomes a new request in
// the editor's name, which someone else must approve.
describe('four-eyes cannot be bypassed by editing a request', () => {
  let db: SqliteDb;
  let audit: AuditLog;
  let registry: ToolRegistry;
  let runs: Array<Record<string, unknown>>;

  const deploy = defineTool({
    name: 'deploy_model',
    title: 'Deploy',
    description: 'A critical tool for the four-eyes tests; records each run.',
    input: z.object({
      model: z.string().describe('model ref'),
      devices: z.string().describe('device group'),
    }),
    output: z.object({ run: z.number().describe('run number') }),
    risk: 'critical',
    idempotent: false,
    run: async (_ctx, args) => {
      runs.push(args);
      return { run: runs.length };
    },
  });

  const service = (strict: boolean) =>
    new ApprovalService({
      db,
      audit,
      events: new EventBus<ApprovalEvent>(),
      log,
      strict,
      ttlMs: 3_600_000,
      validateArgs: (t, a) => registry.parseInput(t, a),
    });
  const ctxFor = (approvals: ApprovalService, userId: string, role: Role): ToolContext => ({
    user: { userId, email: `${userId}@x.test`, name: userId, role, kind: 'user' },
    projectId: 'p1',
    requestId: `req-${userId}`,
    threadId: 'thread-1',
    log,
    services: toolServicesFixture({ approvals, audit }),
    registry,
  });

  beforeEach(async () => {
    db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
    audit = new AuditLog({ db, log });
    runs = [];
    registry = new ToolRegistry([deploy]);
  });
  afterEach(async () => {
    await db.close();
  });

  it('strict: an approver who edits a request cannot run the edit on their own approval; another approver must approve it', async () => {
    const approvals = service(true);
    const olga = ctxFor(approvals, 'olga', 'operator');
    const mallory = ctxFor(approvals, 'mallory', 'approver');
    const bob = ctxFor(approvals, 'bob', 'approver');
    const req = await approvals.request(olga, {
      tool: 'deploy_model',
      args: { model: 'helmets@3', devices: 'line-3' },
      risk: 'critical',
      reason: 'deploy',
      threadId: 'thread-1',
    });

    const edited = await approvals.decide(mallory, req.id, {
      decision: 'edit',
      args: { model: 'backdoor@1', devices: 'all' },
    });
    expect(edited.status).toBe('rejected');
    expect(edited.supersededBy).toMatch(/^apr_/);
    const next = await approvals.get(olga, edited.supersededBy!);
    expect(next).toMatchObject({
      status: 'pending',
      args: { model: 'backdoor@1', devices: 'all' },
      requester: { userId: 'mallory' },
    });

    // neither the old request nor the new one runs for the editor
    const viaOld = await runTool(
      mallory,
      'deploy_model',
      { model: 'backdoor@1', devices: 'all' },
      { approvalId: req.id },
    );
    expect(viaOld.ok).toBe(false);
    await expect(approvals.decide(mallory, next.id, { decision: 'approve' })).rejects.toMatchObject({
      code: 'forbidden',
    });
    const viaNew = await runTool(
      mallory,
      'deploy_model',
      { model: 'backdoor@1', devices: 'all' },
      { approvalId: next.id },
    );
    expect(viaNew).toMatchObject({ ok: false, error: { code: 'approval_required' } });
    // editing again in the editor's own name does not help either: it is their request now
    await expect(
      approvals.decide(mallory, next.id, { decision: 'edit', args: { model: 'backdoor@2', devices: 'all' } }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    expect(runs).toEqual([]);

    await approvals.decide(bob, next.id, { decision: 'approve' });
    expect(
      await runTool(
        mallory,
        'deploy_model',
        { model: 'backdoor@1', devices: 'all' },
        { approvalId: next.id },
      ),
    ).toMatchObject({ ok: true });
    expect(runs).toEqual([{ model: 'backdoor@1', devices: 'all' }]);

    const { entries } = await audit.query({ projectId: 'p1', threadId: 'thread-1' });
    const decided = entries.find((e) => e.action === 'approval.decided' && e.approvalId === req.id);
    expect(decided?.data).toMatchObject({ decision: 'edit', supersededBy: next.id });
    expect(
      entries.find((e) => e.action === 'approval.requested' && e.approvalId === next.id)?.data,
    ).toMatchObject({ supersedes: req.id });
  });

  it('not strict: an approver may still edit and approve in one decision (self-approval is allowed there)', async () => {
    const approvals = service(false);
    const olga = ctxFor(approvals, 'olga', 'operator');
    const ann = ctxFor(approvals, 'ann', 'approver');
    const req = await approvals.request(olga, {
      tool: 'deploy_model',
      args: { model: 'helmets@3', devices: 'line-3' },
      risk: 'critical',
      reason: 'deploy',
      threadId: 'thread-1',
    });
    const edited = await approvals.decide(ann, req.id, {
      decision: 'edit',
      args: { model: 'helmets@3', devices: 'line-2' },
    });
    expect(edited).toMatchObject({ status: 'approved', supersededBy: null });
    expect(
      await runTool(olga, 'deploy_model', { model: 'helmets@3', devices: 'line-2' }, { approvalId: req.id }),
    ).toMatchObject({ ok: true });
  });
});
