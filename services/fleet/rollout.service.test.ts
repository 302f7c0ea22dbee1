import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ModelVersion } from '../models/model.js';
import { RolloutController } from './rollout.controller.js';
import { RolloutService } from './rollout.service.js';
import { makeFleetHarness, testContext, waitFor, type SimDevice } from './fleet.fixtures.js';

type Harness = Awaited<ReturnType<typeof makeFleetHarness>>;

const fast = { minHeartbeats: 1, observeMs: 60_000, healthTimeoutMs: 60_000 };

describe(RolloutService.name, () => {
  let h: Harness;
  let v1: ModelVersion;
  let v2: ModelVersion;
  let devs: SimDevice[];
  const ctx = testContext('operator');

  beforeEach(async () => {
    h = await makeFleetHarness();
    v1 = await h.registerModel('helmets');
    v2 = await h.registerModel('helmets');
    devs = await h.addDevices(3, ['line-3'], 'jetson', v1.id);
  });
  afterEach(async () => {
    await h.cleanup();
  });

  const byId = (status: { devices: Array<{ deviceId: string; state: string }> }) =>
    Object.fromEntries(status.devices.map((d) => [d.deviceId, d.state]));

  it('plans the canary, the waves and the gates without sending anything', async () => {
    devs[2]!.online = false;
    h.clock.now += 31_000;
    await h.heartbeatAll();
    const plan = await h.rollouts.plan(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      strategy: { canary: 1, waves: [50, 100] },
      gates: { maxLatencyP95Ms: 100 },
    });
    expect(plan.model).toMatchObject({ versionId: v2.id, ref: 'helmets@2', sha256: v2.model.sha256 });
    expect(plan.waves.map((w) => [w.label, w.deviceIds])).toEqual([
      ['canary', ['jetson-1']],
      ['wave 1', ['jetson-2']],
      ['wave 2', ['jetson-3']],
    ]);
    expect(plan.gates).toMatchObject({
      maxLatencyP95Ms: 100,
      confidenceMargin: 0.05,
      healthTimeoutMs: 600_000,
    });
    expect(plan.warnings.join('\n')).toMatch(/1 device\(s\) offline now \(jetson-3\).*then skipped/);
    expect(plan.summary[0]).toMatch(/roll out helmets@2 .* to tag line-3: 3 device\(s\) to update/);
    expect(devs.flatMap((d) => d.control)).toEqual([]);
  });

  it('applies the configured default gates to a rollout that names none; gates named in the request win', async () => {
    const configured = h.makeRollouts({
      defaultGates: { healthTimeoutMs: 30_000, minHeartbeats: 2, observeMs: 10_000 },
    });
    const plain = await configured.plan(ctx, { model: v2.ref, target: { tag: 'line-3' } });
    expect(plain.gates).toMatchObject({
      healthTimeoutMs: 30_000,
      minHeartbeats: 2,
      observeMs: 10_000,
      confidenceMargin: 0.05,
    });
    expect(plain.summary.join('\n')).toMatch(/healthy within 30 ?s.*over 2 heartbeat\(s\) or 10 ?s/);
    const named = await configured.plan(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      gates: { minHeartbeats: 5 },
    });
    expect(named.gates).toMatchObject({ healthTimeoutMs: 30_000, minHeartbeats: 5, observeMs: 10_000 });
    const started = await configured.start(ctx, { model: v2.ref, target: { tag: 'line-3' } });
    expect((await configured.status(ctx, started.id)).gates).toMatchObject({
      healthTimeoutMs: 30_000,
      minHeartbeats: 2,
      observeMs: 10_000,
    });
    const noConfidence = h.makeRollouts({ defaultGates: { confidenceMargin: null } });
    expect(
      (await noConfidence.plan(ctx, { model: v2.ref, target: { tag: 'line-3' } })).gates.confidenceMargin,
    ).toBeNull();
    expect(
      (
        await noConfidence.plan(ctx, {
          model: v2.ref,
          target: { tag: 'line-3' },
          gates: { confidenceMargin: 0.1 },
        })
      ).gates.confidenceMargin,
    ).toBe(0.1);
  });

  it('rolls out: canary of one, then the rest, then completed', async () => {
    const started = await h.rollouts.start(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      strategy: { canary: 1 },
      gates: fast,
    });
    expect(started.state).toBe('pending');
    await h.tick();
    let s = await h.rollouts.status(ctx, started.id);
    expect(s.state).toBe('canary');
    expect(byId(s)).toEqual({ 'jetson-1': 'healthy', 'jetson-2': 'pending', 'jetson-3': 'pending' });
    const apply = devs[0]!.received('deploy.apply')[0]!;
    expect(apply.type === 'deploy.apply' && apply.payload.model).toMatchObject({
      versionId: v2.id,
      sha256: v2.model.sha256,
      size: v2.model.size,
    });
    expect(apply.type === 'deploy.apply' && apply.payload.model.url).toMatch(
      /\/storage\/jobs\/job_2\/1\/model\.onnx\?op=get&exp=\d+&sig=/,
    );
    expect(apply.target).toBe('jetson-1');
    expect(devs[1]!.control).toEqual([]);

    await h.heartbeatAll();
    await h.tick();
    s = await h.rollouts.status(ctx, started.id);
    expect(s.state).toBe('waves');
    expect(byId(s)).toEqual({ 'jetson-1': 'healthy', 'jetson-2': 'healthy', 'jetson-3': 'healthy' });
    expect(s.devices[0]).toMatchObject({
      baselineConfidence: 0.8,
      meanConfidence: 0.8,
      heartbeats: 1,
      previousModelVersionId: v1.id,
    });

    await h.heartbeatAll();
    await h.tick();
    s = await h.rollouts.status(ctx, started.id);
    expect(s.state).toBe('completed');
    expect(s.counts).toMatchObject({ healthy: 3, failed: 0, rolled_back: 0 });
    expect(devs.map((d) => d.modelVersionId)).toEqual([v2.id, v2.id, v2.id]);
    const fleet = await h.fleet.list(ctx, { tag: 'line-3' });
    expect(fleet.map((d) => [d.modelVersionId, d.previousModelVersionId])).toEqual(
      Array(3).fill([v2.id, v1.id]),
    );
    expect(devs.map((d) => d.applied.size)).toEqual([1, 1, 1]);

    const types = h.events.filter((e) => e.type.startsWith('rollout.')).map((e) => e.type);
    expect(types[0]).toBe('rollout.started');
    expect(types.at(-1)).toBe('rollout.finished');
    expect(types.filter((t) => t === 'rollout.progress').length).toBeGreaterThan(5);
    const messages = h.events.flatMap((e) => (e.type === 'rollout.progress' ? [e.message] : []));
    expect(messages).toContain('wave 1 of 1 started (2 device(s))');
  });

  it('a start retried under the same idempotency key (a resumed approved step) returns the first rollout, not a conflict or a second one', async () => {
    const keyed = { ...ctx, idempotencyKey: 'apr_rollout_once' };
    const a = await h.rollouts.start(keyed, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    const b = await h.rollouts.start(keyed, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    expect(b.id).toBe(a.id);
    await expect(
      h.rollouts.start(
        { ...ctx, idempotencyKey: 'apr_other' },
        { model: v2.ref, target: { tag: 'line-3' }, gates: fast },
      ),
    ).rejects.toMatchObject({ code: 'conflict' });
  });

  it('a canary failing the health gate is rolled back and the rest is never touched', async () => {
    devs[0]!.behaviour = 'fail';
    const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    await h.tick();
    const s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('rolled_back');
    expect(s.reason).toMatch(/gate failed on jetson-1: the device reported failed: self-test failed/);
    expect(byId(s)).toEqual({ 'jetson-1': 'rolled_back', 'jetson-2': 'skipped', 'jetson-3': 'skipped' });
    expect(devs[0]!.received('deploy.rollback')).toHaveLength(1);
    expect(devs[1]!.control).toEqual([]);
    expect(devs[2]!.control).toEqual([]);
    expect(devs.map((d) => d.modelVersionId)).toEqual([v1.id, v1.id, v1.id]);
    const finished = h.events.find((e) => e.type === 'rollout.finished');
    expect(finished).toMatchObject({ state: 'rolled_back', rolloutId: r.id });
  });

  it('rolls back when the canary is slower than the latency gate', async () => {
    devs[0]!.behaviour = 'slow';
    const r = await h.rollouts.start(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      gates: { ...fast, maxLatencyP95Ms: 100 },
    });
    await h.tick();
    const s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('rolled_back');
    expect(s.reason).toMatch(/p95 latency 500 ms is above the 100 ms gate/);
    expect(devs[0]!.rollbacks).toHaveLength(1);
    expect(devs[0]!.modelVersionId).toBe(v1.id);
    expect(devs[1]!.control).toEqual([]);
  });

  it('rolls back when mean confidence on the new model drops more than the margin', async () => {
    devs[0]!.confidenceAfterSwitch = 0.6;
    const r = await h.rollouts.start(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      gates: { ...fast, minHeartbeats: 2, confidenceMargin: 0.1 },
    });
    await h.tick();
    await h.heartbeatAll();
    await h.tick();
    expect((await h.rollouts.status(ctx, r.id)).state).toBe('canary');
    await h.heartbeatAll();
    await h.tick();
    const s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('rolled_back');
    expect(s.reason).toMatch(/mean top confidence 0.6 is 0.2 below the previous model's 0.8 \(margin 0.1\)/);
    expect(devs[0]!.modelVersionId).toBe(v1.id);
    expect(devs[1]!.control).toEqual([]);
  });

  it('offline devices: waited for, then skipped by policy, shown in status', async () => {
    devs[2]!.online = false;
    const r = await h.rollouts.start(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      gates: fast,
      offline: { waitMs: 120_000, action: 'skip' },
    });
    await h.tick();
    h.clock.now += 31_000;
    await h.heartbeatAll();
    await h.tick();
    let s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('waves');
    const waiting = s.devices.find((d) => d.deviceId === 'jetson-3')!;
    expect(waiting).toMatchObject({
      state: 'pending',
      deviceState: 'offline',
      online: false,
      waitingSince: h.clock.now,
    });
    expect(waiting.message).toMatch(/offline; waiting up to 2 min, then skip/);
    h.clock.now += 121_000;
    await h.heartbeatAll();
    await h.tick();
    await h.heartbeatAll();
    await h.tick();
    s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('completed');
    expect(s.reason).toBe('2 of 3 device(s) updated; the rest were skipped');
    expect(byId(s)).toEqual({ 'jetson-1': 'healthy', 'jetson-2': 'healthy', 'jetson-3': 'skipped' });
    expect(s.devices[2]!.message).toMatch(/skipped: offline for 2 min \(policy: wait 2 min, then skip\)/);
    expect(devs[2]!.control).toEqual([]);
  });

  it('a canary that went offline and was skipped is replaced by the next online device before any wave', async () => {
    const r = await h.rollouts.start(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      gates: fast,
      offline: { waitMs: 60_000, action: 'skip' },
    });
    devs[0]!.online = false;
    h.clock.now += 31_000;
    await h.heartbeatAll();
    await h.tick();
    h.clock.now += 61_000;
    await h.heartbeatAll();
    await h.tick();
    let s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('canary');
    expect(s.devices.map((d) => [d.deviceId, d.wave, d.state])).toEqual([
      ['jetson-1', 0, 'skipped'],
      ['jetson-2', 0, 'healthy'],
      ['jetson-3', 1, 'pending'],
    ]);
    expect(devs[2]!.control).toEqual([]);
    await h.heartbeatAll();
    await h.tick();
    await h.heartbeatAll();
    await h.tick();
    s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('completed');
    expect(
      h.events.some(
        (e) =>
          e.type === 'rollout.progress' &&
          e.message === 'no canary could be reached; jetson-2 becomes the canary',
      ),
    ).toBe(true);
  });

  it('offline devices: the fail policy fails the rollout and leaves healthy devices alone', async () => {
    devs[2]!.online = false;
    const r = await h.rollouts.start(ctx, {
      model: v2.ref,
      target: { tag: 'line-3' },
      gates: fast,
      offline: { waitMs: 60_000, action: 'fail' },
    });
    await h.tick();
    h.clock.now += 31_000;
    await h.heartbeatAll();
    await h.tick();
    h.clock.now += 61_000;
    await h.heartbeatAll();
    await h.tick();
    const s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('failed');
    expect(s.reason).toMatch(/jetson-3 offline for 61 s \(policy: wait 60 s, then fail\)/);
    expect(byId(s)).toEqual({ 'jetson-1': 'healthy', 'jetson-2': 'healthy', 'jetson-3': 'failed' });
    expect(devs.flatMap((d) => d.rollbacks)).toEqual([]);
  });

  it('pause holds the next wave, resume continues it', async () => {
    const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    await h.tick();
    const paused = await h.rollouts.pause(ctx, r.id, 'checking the line first');
    expect(paused).toMatchObject({
      state: 'paused',
      pausedFrom: 'canary',
      reason: 'checking the line first (operator)',
    });
    await h.heartbeatAll();
    await h.tick();
    await h.tick();
    let s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('paused');
    expect(s.devices[0]!.verifiedAt).not.toBeNull();
    expect(devs[1]!.control).toEqual([]);
    await expect(h.rollouts.resume(testContext('viewer'), r.id)).rejects.toMatchObject({ code: 'forbidden' });
    expect((await h.rollouts.resume(ctx, r.id)).state).toBe('canary');
    await h.tick();
    await h.heartbeatAll();
    await h.tick();
    s = await h.rollouts.status(ctx, r.id);
    expect(s.state).toBe('completed');
    await expect(h.rollouts.pause(ctx, r.id)).rejects.toMatchObject({ code: 'conflict' });
  });

  it('a manual rollback reverts the touched devices and never contacts the others', async () => {
    const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    await h.tick();
    const s = await h.rollouts.rollback(ctx, r.id, 'wrong model picked');
    await h.settle();
    expect(s.state).toBe('rolled_back');
    expect(s.reason).toBe('wrong model picked (operator)');
    expect(devs[0]!.modelVersionId).toBe(v1.id);
    expect(devs[1]!.control).toEqual([]);
    expect((await h.rollouts.status(ctx, r.id)).devices[0]).toMatchObject({
      state: 'rolled_back',
      deviceState: 'rolled_back',
    });
  });

  it('shows a device that could not roll back', async () => {
    devs[0]!.rollbackFails = true;
    const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    await h.tick();
    await h.rollouts.rollback(ctx, r.id, 'stop');
    await h.settle();
    const d = (await h.rollouts.status(ctx, r.id)).devices[0]!;
    expect(d).toMatchObject({
      state: 'rolled_back',
      deviceState: 'failed',
      message: 'the device could not roll back: previous model file is corrupt',
    });
  });

  it('a completed rollout can still be rolled back on every device', async () => {
    const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    for (let i = 0; i < 3; i++) {
      await h.tick();
      await h.heartbeatAll();
    }
    expect((await h.rollouts.status(ctx, r.id)).state).toBe('completed');
    const s = await h.rollouts.rollback(ctx, r.id, 'operators prefer the old model');
    await h.settle();
    expect(s.state).toBe('rolled_back');
    expect(byId(s)).toEqual({
      'jetson-1': 'rolled_back',
      'jetson-2': 'rolled_back',
      'jetson-3': 'rolled_back',
    });
    expect(devs.map((d) => d.modelVersionId)).toEqual([v1.id, v1.id, v1.id]);
    expect(
      h.events
        .filter((e) => e.type === 'rollout.finished')
        .map((e) => e.type === 'rollout.finished' && e.state),
    ).toEqual(['completed', 'rolled_back']);
  });

  it('continues after a platform restart from the recorded state', async () => {
    const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    await h.tick();
    await h.controller.stop();
    h.controllers.splice(0);
    await h.heartbeatAll();
    const rollouts = h.makeRollouts();
    const restarted = h.makeController(rollouts);
    h.controllers.push(restarted);
    expect(await h.tick(restarted)).toMatchObject({ leader: true, advanced: [r.id] });
    await h.heartbeatAll();
    expect((await rollouts.status(ctx, r.id)).state).toBe('waves');
    await h.heartbeatAll();
    await h.tick(restarted);
    const s = await rollouts.status(ctx, r.id);
    expect(s.state).toBe('completed');
    expect(devs.map((d) => d.applied.size)).toEqual([1, 1, 1]);
    expect(devs[0]!.received('deploy.apply')).toHaveLength(1);
  });

  it('the lock keeps a second controller idle while the first leads', async () => {
    const second = h.makeController(h.makeRollouts());
    h.controllers.push(second);
    const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
    expect(await h.tick()).toMatchObject({ leader: true, advanced: [r.id] });
    expect(await h.tick(second)).toEqual({ leader: false, advanced: [] });
    expect(second.isLeader).toBe(false);
    const before = await h.rollouts.status(ctx, r.id);
    await h.tick(second);
    expect(await h.rollouts.status(ctx, r.id)).toEqual(before);
    await h.controller.stop();
    await h.heartbeatAll();
    expect(await h.tick(second)).toMatchObject({ leader: true });
    expect((await h.rollouts.status(ctx, r.id)).state).toBe('waves');
  });

  it('renews its lock between ticks, so a short lock (fast failover) never lapses under a live leader', async () => {
    h.controllers.splice(0);
    const make = () =>
      new RolloutController({
        rollouts: h.rollouts,
        broker: h.broker,
        cache: h.cache,
        log: testContext().log,
        tickMs: 60_000,
        lockTtlMs: 150,
      });
    const [leader, other] = [make(), make()];
    await leader.start();
    try {
      expect(leader.isLeader).toBe(true);
      // several lock lifetimes without a tick: the renewal timer keeps the lead
      await new Promise((r) => setTimeout(r, 600));
      expect(await other.tick()).toEqual({ leader: false, advanced: [] });
      expect(leader.isLeader).toBe(true);
    } finally {
      await leader.stop();
    }
    expect(await other.tick()).toMatchObject({ leader: true });
    await other.stop();
  });

  it('runs on its own once started: consumer, periodic tick, immediate start', async () => {
    h.controllers.splice(0);
    const fleetSub = await h.fleet.startConsumers(h.broker);
    const live = new RolloutController({
      rollouts: h.rollouts,
      broker: h.broker,
      cache: h.cache,
      log: testContext().log,
      events: h.bus,
      tickMs: 20,
    });
    await live.start();
    const beat = setInterval(() => void Promise.all(devs.map((d) => d.heartbeat())), 15);
    try {
      const r = await h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' }, gates: fast });
      await waitFor(
        async () => (await h.rollouts.status(ctx, r.id)).state === 'completed',
        'rollout completed',
        8000,
      );
      expect(devs.map((d) => d.modelVersionId)).toEqual([v2.id, v2.id, v2.id]);
    } finally {
      clearInterval(beat);
      await live.stop();
      await fleetSub.close();
    }
  });

  it('refuses what it cannot do, with a reason', async () => {
    await expect(
      h.rollouts.start(testContext('viewer'), { model: v2.ref, target: { tag: 'line-3' } }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    await expect(
      h.rollouts.plan(ctx, {
        model: v2.ref,
        target: { tag: 'line-3' },
        strategy: { canary: 1, waves: [50] },
      }),
    ).rejects.toThrow(/the last wave must reach 100 percent/);
    await expect(h.rollouts.plan(ctx, { model: v2.ref, target: { tag: 'line-9' } })).rejects.toThrow(
      /known tags: line-3/,
    );
    await expect(h.rollouts.start(ctx, { model: v1.ref, target: { tag: 'line-3' } })).rejects.toThrow(
      /already runs helmets@1/,
    );
    await h.rollouts.start(ctx, { model: v2.ref, target: { deviceIds: ['jetson-1'] } });
    await expect(h.rollouts.start(ctx, { model: v2.ref, target: { tag: 'line-3' } })).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(h.rollouts.status(ctx, 'ro_missing')).rejects.toMatchObject({ code: 'not_found' });
    expect(await h.rollouts.applyTelemetry({ type: 'device.health', payload: {} })).toEqual([]);
  });
});
