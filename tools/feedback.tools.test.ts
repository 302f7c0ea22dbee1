import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { governanceFixture, toolServicesFixture } from './services.fixtures.js';
import type { ApprovalService } from '../services/approvals/approval.service.js';
import { makeFeedbackHarness } from '../services/feedback/feedback.fixtures.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { silentLogger } from '../core/log.js';
import type { ToolContext } from './define.js';
import { createToolRegistry } from './index.js';
import { runTool } from './run-tool.js';
import type { ToolServices } from './services.js';

const log = silentLogger();

describe('feedback tools', () => {
  let db: SqliteDb;
  let h: Awaited<ReturnType<typeof makeFeedbackHarness>>;
  let ctx: ToolContext;
  let approvals: ApprovalService;

  beforeEach(async () => {
    db = new SqliteDb({ file: ':memory:' });
    h = await makeFeedbackHarness(db);
    const governance = governanceFixture(db, log);
    const audit = governance.audit;
    approvals = governance.approvals;
    const services: ToolServices = toolServicesFixture({ approvals, audit, feedback: h.sut });
    ctx = { ...h.ctx, log, services, registry: createToolRegistry() };
  });

  afterEach(async () => {
    await h.cleanup();
    await db.close();
  });

  it('summarises device feedback and reviews a sample only with an approval', async () => {
    const sent = await h.deviceSends('jetson-1', 1);
    expect(await runTool(ctx, 'feedback_summary', {})).toMatchObject({
      ok: true,
      output: { byStatus: { pending: 1 }, byDevice: { 'jetson-1': 1 }, acceptedNotInDataset: 0 },
    });
    const { items } = await h.sut.list(h.ctx, { status: 'pending' });
    const args = ctx.registry.parseInput('review_feedback', { sampleId: items[0]!.id, decision: 'accept' });
    expect(await runTool(ctx, 'review_feedback', args)).toMatchObject({
      ok: false,
      error: { code: 'approval_required' },
    });
    const req = await approvals.request(ctx, {
      tool: 'review_feedback',
      args,
      risk: 'write',
      reason: 'review',
    });
    await approvals.decide(ctx, req.id, { decision: 'approve' });
    expect(await runTool(ctx, 'review_feedback', args, { approvalId: req.id })).toMatchObject({
      ok: true,
      output: { status: 'accepted' },
    });
    expect(await runTool(ctx, 'feedback_summary', {})).toMatchObject({
      ok: true,
      output: { acceptedNotInDataset: 1 },
    });
    expect(sent.type).toBe('feedback.sample');
  });
});
