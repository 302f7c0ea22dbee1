import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toolServicesFixture } from './services.fixtures.js';
import { rolloutWaitSource } from '../agent/wait-sources.js';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import { EventBus } from '../core/events.js';
import { makeFleetHarness } from '../services/fleet/fleet.fixtures.js';
import { silentLogger } from '../core/log.js';
import type { ToolContext } from './define.js';
import { createToolRegistry } from './index.js';
import { runTool } from './run-tool.js';
import type { ToolServices } from './services.js';

const log = silentLogger();

describe('fleet and rollout tools', () => {
  let h: Awaited<ReturnType<typeof makeFleetHarness>>;
  let ctx: ToolContext;
  let approvals: ApprovalService;
  let v2: { id: string; ref: string };

  beforeEach(async () => {
    h = await makeFleetHarness();
    const v1 = await h.registerModel('helmets');
    v2 = await h.registerModel('helmets');
    await h.addDevices(2, ['line-3'], 'jetson', v1.id);
    const audit = new AuditLog({ db: h.db, log });
    approvals = new ApprovalService({
      db: h.db,
      audit,
      events: new EventBus<ApprovalEvent>(),
      log,
      strict: false,
      ttlMs: 3_600_000,
    });
    const services: ToolServices = toolServicesFixture({
      approvals,
      audit,
      fleet: h.fleet,
      rollouts: h.rollouts,
      models: h.registry,
    });
    ctx = {
      user: { userId: 'bob', email: 'bob@x.test', name: 'bob', role: 'approver', kind: 'user' },
      projectId: 'default',
      requestId: 'r',
      threadId: 'thr_fleet',
      log,
      services,
      registry: createToolRegistry(),
    };
  });

  afterEach(async () => {
    await h.cleanup();
  });

  it('lists and describes devices, plans without sending anything, and starts a rollout only with an approval', async () => {
    expect(ctx.registry.has('start_rollout') && ctx.registry.has('list_devices')).toBe(true);
    // people (and the report) read the model each device runs as name@N, not its mv_ id
    expect(await runTool(ctx, 'list_devices', { tag: 'line-3' })).toMatchObject({
      ok: true,
      output: {
        devices: [
          { id: 'jetson-1', model: 'helmets@1' },
          { id: 'jetson-2', model: 'helmets@1' },
        ],
      },
    });
    expect(await runTool(ctx, 'describe_device', { device: 'jetson-1' })).toMatchObject({
      ok: true,
      output: { id: 'jetson-1', tags: ['line-3'], model: 'helmets@1' },
    });
    const plan = await runTool(ctx, 'plan_rollout', { modelVersion: v2.ref, target: { tag: 'line-3' } });
    expect(plan).toMatchObject({ ok: true, output: { devices: 2 } });
    expect(h.devices.flatMap((d) => d.control)).toEqual([]);

    const args = ctx.registry.parseInput('start_rollout', { modelVersion: v2.id, target: { tag: 'line-3' } });
    expect(await runTool(ctx, 'start_rollout', args)).toMatchObject({
      ok: false,
      error: { code: 'approval_required' },
    });
    const req = await approvals.request(ctx, {
      tool: 'start_rollout',
      args,
      risk: 'critical',
      reason: 'deploy',
      threadId: 'thr_fleet',
    });
    await approvals.decide(ctx, req.id, { decision: 'approve' });
    const started = await runTool(ctx, 'start_rollout', args, { approvalId: req.id });
    expect(started).toMatchObject({ ok: true, output: { model: v2.ref, state: 'pending', devicesTotal: 2 } });
    const rolloutId = (started as { output: { rolloutId: string } }).output.rolloutId;
    expect(
      ctx.registry.get('start_rollout').waitFor?.((started as unknown as { output: never }).output),
    ).toEqual({ kind: 'rollout', id: rolloutId });

    // The durable wait sees the rollout still running, then how it ended.
    const source = rolloutWaitSource(h.rollouts);
    expect(await source.check(ctx, rolloutId)).toBeUndefined();
    expect(await runTool(ctx, 'rollout_status', { rolloutId })).toMatchObject({
      ok: true,
      output: { rolloutId, state: 'pending' },
    });
    const back = await approvals.request(ctx, {
      tool: 'rollback_rollout',
      args: { rolloutId, reason: 'test' },
      risk: 'critical',
      reason: 'undo',
      threadId: 'thr_fleet',
    });
    await approvals.decide(ctx, back.id, { decision: 'approve' });
    expect(
      await runTool(ctx, 'rollback_rollout', { rolloutId, reason: 'test' }, { approvalId: back.id }),
    ).toMatchObject({ ok: true });
    await h.tick();
    const ended = await source.check(ctx, rolloutId);
    expect(ended).toMatchObject({
      kind: 'rollout',
      id: rolloutId,
      ok: false,
      status: 'rolled_back',
      // the rollout never reached a device: both stay on their previous model
      data: { devicesTotal: 2, devicesUpdated: 0, devicesRolledBack: 2 },
    });
    expect(await runTool(ctx, 'rollout_status', { rolloutId })).toMatchObject({
      ok: true,
      output: { state: 'rolled_back', devicesRolledBack: 2 },
    });
    expect(await runTool(ctx, 'explain_rollout', { rolloutId })).toMatchObject({
      ok: true,
      output: { text: expect.stringMatching(/deploys helmets@2 to devices tagged line-3/) },
    });
  });
});
