import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toolServicesFixture } from './services.fixtures.js';
import { z } from 'zod';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import type { Role } from '../core/context.js';
import { EventBus } from '../core/events.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { silentLogger } from '../core/log.js';
import { defineTool, type ToolContext } from './define.js';
import { ToolRegistry } from './registry.js';
import { runTool } from './run-tool.js';
import { decideApproval, listApprovals, queryAudit, verifyAudit } from './governance.tools.js';

const log = silentLogger();

describe('runTool', () => {
  let db: SqliteDb;
  let registry: ToolRegistry;
  let audit: AuditLog;
  let approvals: ApprovalService;
  let runs: Array<Record<string, unknown>>;

  const ctx = (userId: string, role: Role, threadId?: string): ToolContext => ({
    user: { userId, email: `${userId}@x.test`, name: userId, role, kind: 'user' },
    projectId: 'p1',
    requestId: `req-${userId}`,
    log,
    services: toolServicesFixture({ approvals, audit }),
    registry,
    ...(threadId ? { threadId } : {}),
  });

  beforeEach(async () => {
    db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
    runs = [];
    audit = new AuditLog({ db, log });
    registry = new ToolRegistry([
      defineTool({
        name: 'count_images',
        title: 'Count images',
        description: 'Count the images of a dataset (a read tool for tests).',
        input: z.object({
          dataset: z.string().min(1).describe('dataset name'),
          split: z.enum(['train', 'val', 'test']).default('train').describe('which split'),
        }),
        output: z.object({ count: z.number().int().describe('images') }),
        risk: 'read',
        idempotent: true,
        run: async (_ctx, input) => ({ count: input.dataset.length }),
      }),
      defineTool({
        name: 'start_job',
        title: 'Start a job',
        description: 'Start a job on a dataset (a write tool for tests).',
        input: z.object({
          dataset: z.string().min(1).describe('dataset name'),
          epochs: z.number().int().min(1).default(10).describe('epochs'),
        }),
        output: z.object({ jobId: z.string().describe('job id') }),
        risk: 'write',
        idempotent: false,
        run: async (_ctx, input) => {
          runs.push(input);
          return { jobId: `job_${runs.length}` };
        },
      }),
      defineTool({
        name: 'broken_output',
        title: 'Broken output',
        description: 'Returns output that does not match its schema (for tests).',
        input: z.object({}),
        output: z.object({ n: z.number().describe('a number') }),
        risk: 'read',
        idempotent: true,
        run: async () => ({ n: 'not a number' }) as unknown as { n: number },
      }),
      defineTool({
        name: 'explodes',
        title: 'Explodes',
        description: 'Throws an unexpected error (for tests).',
        input: z.object({}),
        output: z.object({}),
        risk: 'read',
        idempotent: true,
        run: async () => {
          throw new Error('socket hang up');
        },
      }),
      listApprovals,
      decideApproval,
      queryAudit,
      verifyAudit,
    ]);
    approvals = new ApprovalService({
      db,
      audit,
      events: new EventBus<ApprovalEvent>(),
      log,
      strict: false,
      ttlMs: 3_600_000,
      validateArgs: (t, a) => registry.parseInput(t, a),
    });
  });

  afterEach(async () => {
    await db.close();
  });

  it('runs a read tool with defaults applied and audits start and finish', async () => {
    const r = await runTool(ctx('ann', 'viewer'), 'count_images', { dataset: 'helmets' });
    expect(r).toEqual({ ok: true, output: { count: 7 } });
    const { entries } = await audit.query({ projectId: 'p1', order: 'asc' });
    expect(entries.map((e) => e.action)).toEqual(['tool.started', 'tool.finished']);
    expect(entries[0]!.data.args).toEqual({ dataset: 'helmets', split: 'train' });
  });

  it('returns a structured error saying what is wrong and what is valid', async () => {
    const r = await runTool(ctx('ann', 'viewer'), 'count_images', { dataset: '', split: 'all' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('invalid_input');
    expect(r.error.message).toMatch(/dataset: .*split: /);
    expect(r.error.details?.issues).toHaveLength(2);
    expect((r.error.details?.expected as { properties: Record<string, unknown> }).properties).toHaveProperty(
      'split',
    );
    const unknown = await runTool(ctx('ann', 'viewer'), 'count_imgs', {});
    expect(unknown).toMatchObject({
      ok: false,
      error: { code: 'not_found', message: expect.stringMatching(/known tools: .*count_images/) },
    });
  });

  it('never returns a stack trace; a bad output is an internal error', async () => {
    const r = await runTool(ctx('ann', 'viewer'), 'explodes', {});
    expect(r).toEqual({
      ok: false,
      error: { code: 'internal', message: 'unexpected error: socket hang up' },
    });
    const bad = await runTool(ctx('ann', 'viewer'), 'broken_output', {});
    expect(bad).toMatchObject({
      ok: false,
      error: { code: 'internal', message: expect.stringMatching(/does not match its schema: n:/) },
    });
    const { entries } = await audit.query({ projectId: 'p1', action: 'tool.failed' });
    expect(entries).toHaveLength(2);
  });

  it('refuses a write tool without approval, for a viewer, or with arguments other than the approved ones', async () => {
    const op = ctx('olga', 'operator', 'thr_1');
    expect(await runTool(op, 'start_job', { dataset: 'helmets' })).toMatchObject({
      ok: false,
      error: { code: 'approval_required' },
    });
    expect(await runTool(ctx('vic', 'viewer'), 'start_job', { dataset: 'helmets' })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    });
    const args = registry.parseInput('start_job', { dataset: 'helmets' });
    const req = await approvals.request(op, {
      tool: 'start_job',
      args,
      risk: 'write',
      reason: 'test',
      threadId: 'thr_1',
    });
    await approvals.decide(op, req.id, { decision: 'approve' });
    const other = await runTool(op, 'start_job', { dataset: 'helmets', epochs: 11 }, { approvalId: req.id });
    expect(other.ok).toBe(false);
    expect(runs).toEqual([]);
    // The same arguments written differently (default spelled out) hash the same.
    const ok = await runTool(op, 'start_job', { epochs: 10, dataset: 'helmets' }, { approvalId: req.id });
    expect(ok).toEqual({ ok: true, output: { jobId: 'job_1' } });
  });

  it('returns the recorded output when an approved call is replayed, without running it twice', async () => {
    const op = ctx('olga', 'operator', 'thr_2');
    const args = registry.parseInput('start_job', { dataset: 'helmets' });
    const req = await approvals.request(op, {
      tool: 'start_job',
      args,
      risk: 'write',
      reason: 'test',
      threadId: 'thr_2',
    });
    await approvals.decide(op, req.id, { decision: 'approve' });
    expect(await runTool(op, 'start_job', args, { approvalId: req.id })).toEqual({
      ok: true,
      output: { jobId: 'job_1' },
    });
    expect(await runTool(op, 'start_job', args, { approvalId: req.id })).toEqual({
      ok: true,
      output: { jobId: 'job_1' },
      replayed: true,
    });
    expect(runs).toHaveLength(1);
  });

  it('lets people decide approvals through decide_approval, under the policy', async () => {
    const op = ctx('olga', 'operator');
    const req = await approvals.request(op, {
      tool: 'start_job',
      args: { dataset: 'x', epochs: 10 },
      risk: 'write',
      reason: 'test',
    });
    const listed = await runTool(op, 'list_approvals', {});
    expect(listed).toMatchObject({
      ok: true,
      output: { approvals: [{ id: req.id, tool: 'start_job', status: 'pending' }] },
    });
    expect(
      await runTool(ctx('vic', 'viewer'), 'decide_approval', { approvalId: req.id, decision: 'approve' }),
    ).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await runTool(op, 'decide_approval', { approvalId: req.id, decision: 'approve' })).toMatchObject({
      ok: true,
      output: { status: 'approved' },
    });
    const q = await runTool(op, 'query_audit', { action: 'approval.decided' });
    expect(q).toMatchObject({
      ok: true,
      output: { total: 1, entries: [{ actor: 'olga', approvalId: req.id }] },
    });
    expect(await runTool(op, 'verify_audit', {})).toMatchObject({ ok: true, output: { ok: true } });
  });
});

describe('ToolRegistry and defineTool', () => {
  it('refuses names that are not snake_case and fields without a description', () => {
    const base = {
      title: 't',
      description: 'a description long enough for a model',
      output: z.object({}),
      risk: 'read' as const,
      idempotent: true,
      run: async () => ({}),
    };
    expect(() => defineTool({ ...base, name: 'listDatasets', input: z.object({}) })).toThrow(/snake_case/);
    expect(() =>
      defineTool({
        ...base,
        name: 'list_x',
        input: z.object({ a: z.string(), b: z.object({ c: z.number() }).describe('b') }),
      }),
    ).toThrow(/input\.a, input\.b\.c/);
  });

  it('describes tools as JSON Schema for LLMs and MCP, with annotations from the risk', () => {
    const registry = new ToolRegistry([listApprovals, decideApproval, queryAudit]);
    const schema = registry.schema('list_approvals');
    expect(schema.annotations).toEqual({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(schema.inputSchema).toMatchObject({
      type: 'object',
      properties: { status: { description: 'which requests to list' } },
    });
    expect((schema.inputSchema as { required?: string[] }).required ?? []).not.toContain('status');
    const llm = registry.llmTools();
    expect(llm.map((t) => t.function.name)).toEqual(['list_approvals', 'decide_approval', 'query_audit']);
    expect(llm[1]!.function.description).toMatch(/runs only after a person approves it/);
    expect(() => registry.get('nope')).toThrow(/known tools: decide_approval, list_approvals, query_audit/);
  });
});
