import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { governanceFixture, toolServicesFixture } from './services.fixtures.js';
import type { ApprovalService } from '../services/approvals/approval.service.js';
import { testContext } from '../services/datasets/datasets.fixtures.js';
import { makeFeedbackHarness } from '../services/feedback/feedback.fixtures.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { silentLogger } from '../core/log.js';
import type { ToolContext } from './define.js';
import { createToolRegistry } from './index.js';
import { runTool } from './run-tool.js';
import type { ToolServices } from './services.js';

const log = silentLogger();

describe('retrain policy tools', () => {
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
    const services: ToolServices = toolServicesFixture({ approvals, audit, feedback: h.sut, retrain: h.sut });
    ctx = { ...h.ctx, log, services, registry: createToolRegistry() };
  });

  afterEach(async () => {
    await h.cleanup();
    await db.close();
  });

  async function approved(tool: string, input: Record<string, unknown>) {
    const args = ctx.registry.parseInput(tool, input);
    expect(await runTool(ctx, tool, args)).toMatchObject({ ok: false, error: { code: 'approval_required' } });
    const req = await approvals.request(ctx, { tool, args, risk: 'write', reason: 'test' });
    await approvals.decide(ctx, req.id, { decision: 'approve' });
    return runTool(ctx, tool, args, { approvalId: req.id });
  }

  it('sets a policy only with an approval, and a fired policy proposes fine-tuning from production, read by list_retrain_proposals', async () => {
    expect(
      await approved('set_retrain_policy', {
        model: 'helmets-builtin',
        minAcceptedSamples: 2,
        minImprovement: 0.02,
      }),
    ).toMatchObject({
      ok: true,
      output: { model: 'helmets-builtin', minAcceptedSamples: 2, minImprovement: 0.02, cooldownHours: 24 },
    });
    expect(await runTool(ctx, 'list_retrain_policies', {})).toMatchObject({
      ok: true,
      output: { policies: [{ model: 'helmets-builtin', minAcceptedSamples: 2 }] },
    });

    await h.deviceSends('jetson-1', 1);
    await h.deviceSends('jetson-1', 2);
    for (const s of (await h.sut.list(h.ctx)).items) await h.sut.review(h.ctx, s.id, { decision: 'accept' });
    await h.registry.promote(testContext('default', 'approver'), 'helmets-builtin@1', 'production');

    const checked = await approved('check_retrain_policies', {});
    expect(checked).toMatchObject({
      ok: true,
      output: {
        proposals: [
          {
            model: 'helmets-builtin',
            trigger: 'min_accepted_samples',
            samples: 2,
            from: 'helmets-builtin@production',
            minImprovement: 0.02,
          },
        ],
      },
    });
    const listed = await runTool(ctx, 'list_retrain_proposals', {});
    expect(listed.ok).toBe(true);
    const [proposal] = (listed as { output: { proposals: Array<{ steps: string[]; reason: string }> } })
      .output.proposals;
    expect(proposal!.reason).toBe(
      '2 accepted feedback sample(s) wait for a dataset version (policy: at least 2)',
    );
    expect(proposal!.steps).toEqual([
      'add the 2 accepted feedback sample(s) to helmets as a new version',
      'fine-tune helmets-builtin from helmets-builtin@production on the newest version of helmets with the same configuration',
      'evaluate the new version and helmets-builtin@production on the same test split',
      'promote it to production and roll it out to the devices that run helmets-builtin@production (canary first) only if its mAP50 is higher by at least 0.02',
    ]);
    // proposing changed nothing else: no dataset version, no training job
    expect((await h.datasets.listVersions(h.ctx, 'helmets')).map((v) => v.version)).toEqual([1]);
    expect(await h.db.kysely.selectFrom('training_jobs').selectAll().execute()).toEqual([]);
  });

  it('refuses a policy without a trigger, naming both', async () => {
    const res = await approved('set_retrain_policy', { model: 'helmets-builtin' });
    expect(res).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(JSON.stringify(res)).toMatch(/set minAcceptedSamples, confidenceDropOver or both/);
  });
});
