import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolServicesFixture } from './services.fixtures.js';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import { EventBus } from '../core/events.js';
import { silentLogger } from '../core/log.js';
import { HELMET_AP, makeEvaluationFixture } from '../services/models/models.fixtures.js';
import type { ToolContext, ToolProgress } from './define.js';
import { createToolRegistry } from './index.js';
import { runTool } from './run-tool.js';
import type { ToolServices } from './services.js';

const log = silentLogger();

describe('model evaluation tools', () => {
  let f: Awaited<ReturnType<typeof makeEvaluationFixture>>;
  let ctx: ToolContext;
  let approvals: ApprovalService;
  const progress: ToolProgress[] = [];

  beforeAll(async () => {
    f = await makeEvaluationFixture();
    const audit = new AuditLog({ db: f.db, log });
    approvals = new ApprovalService({
      db: f.db,
      audit,
      events: new EventBus<ApprovalEvent>(),
      log,
      strict: false,
      ttlMs: 3_600_000,
    });
    const services: ToolServices = toolServicesFixture({
      approvals,
      audit,
      models: f.registry,
      evaluations: f.sut,
    });
    ctx = {
      ...f.ctx,
      log,
      services,
      registry: createToolRegistry(),
      onProgress: (p) => progress.push(p),
    };
  }, 90_000);

  afterAll(async () => {
    await f?.cleanup();
  });

  it('evaluate_model is a write step: it runs only with an approval, reports progress, and list_evaluations reads the history', async () => {
    const v = await f.register({});
    expect(ctx.registry.get('evaluate_model').risk).toBe('write');
    expect(ctx.registry.get('list_evaluations').risk).toBe('read');
    const args = ctx.registry.parseInput('evaluate_model', { modelVersion: v.ref });
    expect(args).toEqual({ modelVersion: 'helmets@1', split: 'test' });
    expect(await runTool(ctx, 'evaluate_model', args)).toMatchObject({
      ok: false,
      error: { code: 'approval_required' },
    });
    expect(await runTool(ctx, 'list_evaluations', { modelVersion: v.ref })).toMatchObject({
      ok: true,
      output: { evaluations: [] },
    });

    const req = await approvals.request(ctx, {
      tool: 'evaluate_model',
      args,
      risk: 'write',
      reason: 'check before promoting',
    });
    await approvals.decide(ctx, req.id, { decision: 'approve' });
    const run = await runTool(ctx, 'evaluate_model', args, { approvalId: req.id });
    if (!run.ok) throw new Error(run.error.message);
    const out = run.output as {
      mAP50: number;
      dataset: string;
      split: string;
      images: number;
      perClass: Array<{ className: string; ap50: number | null }>;
    };
    expect(out).toMatchObject({
      model: 'helmets@1',
      dataset: 'helmets-eval@1',
      split: 'test',
      images: 2,
      imagesTotal: 2,
    });
    expect(out.mAP50).toBeCloseTo((HELMET_AP + 1) / 2, 10);
    expect(out.perClass.map((c) => c.className)).toEqual(['helmet', 'head']);
    expect(progress.map((p) => p.message)).toEqual([
      'evaluated 0/2 images',
      'evaluated 1/2 images',
      'evaluated 2/2 images',
    ]);
    expect(progress.at(-1)).toMatchObject({ fraction: 1, data: { done: 2, total: 2 } });

    const listed = await runTool(ctx, 'list_evaluations', { modelVersion: v.id });
    expect(listed).toMatchObject({
      ok: true,
      output: { evaluations: [{ model: 'helmets@1', mAP50: out.mAP50, dataset: 'helmets-eval@1' }] },
    });
  });

  it('reports at most one progress event per percent on a long evaluation', async () => {
    const v = await f.register({});
    const real = await f.sut.evaluate(f.ctx, { modelVersion: v.id });
    // The service reports every image; what the tool forwards to sockets and MCP is the behaviour here.
    const evaluations = {
      evaluate: async (
        _ctx: unknown,
        _input: unknown,
        onProgress?: (p: { done: number; total: number }) => void,
      ) => {
        for (let done = 0; done <= 5000; done++) onProgress?.({ done, total: 5000 });
        return real;
      },
      list: f.sut.list.bind(f.sut),
    };
    const seen: ToolProgress[] = [];
    const services: ToolServices = { ...ctx.services, evaluations };
    const c: ToolContext = {
      ...ctx,
      services,
      registry: createToolRegistry(),
      onProgress: (p) => seen.push(p),
    };
    const out = await createToolRegistry()
      .get('evaluate_model')
      .run(c, { modelVersion: v.id, split: 'test' });
    expect(out).toMatchObject({ model: real.model });
    expect(seen).toHaveLength(101);
    expect(seen.map((p) => p.fraction)).toEqual([...seen.map((p) => p.fraction)].sort((a, b) => a! - b!));
    expect(seen.at(-1)).toMatchObject({ message: 'evaluated 5000/5000 images', fraction: 1 });
  });

  it('returns a clear tool error for a class mismatch', async () => {
    const v = await f.register({});
    const args = ctx.registry.parseInput('evaluate_model', { modelVersion: v.id, dataset: 'vests' });
    const req = await approvals.request(ctx, {
      tool: 'evaluate_model',
      args,
      risk: 'write',
      reason: 'newer data',
    });
    await approvals.decide(ctx, req.id, { decision: 'approve' });
    const run = await runTool(ctx, 'evaluate_model', args, { approvalId: req.id });
    expect(run).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(run.ok ? '' : run.error.message).toMatch(/class names do not match: dataset vests@1 has "vest"/);
  });
});
