import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../../test/services.fixtures.js';
import { MysqlDb } from '../infra/db/mysql.js';
import { makeFeedbackHarness } from '../feedback/feedback.fixtures.js';
import { makeFleetHarness, testContext } from './fleet.fixtures.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)('fleet, rollouts and feedback on MySQL', () => {
  let temp: { url: string; drop: () => Promise<void> };
  let db: MysqlDb;

  beforeAll(async () => {
    temp = await createTempMysqlDatabase();
    db = new MysqlDb({ url: temp.url });
    await db.migrate();
  });
  afterAll(async () => {
    await db?.close();
    await temp?.drop();
  });

  it('registers devices, rolls out canary then waves, rolls back a failing canary, and restarts mid-rollout', async () => {
    const h = await makeFleetHarness({ db: new MysqlDb({ url: temp.url }) });
    const ctx = testContext();
    try {
      const v1 = await h.registerModel('vests');
      const v2 = await h.registerModel('vests');
      const devs = await h.addDevices(4, ['line-7', 'north'], 'orin', v1.id);
      expect((await h.fleet.list(ctx, { tag: 'north', online: true })).map((d) => d.id)).toEqual([
        'orin-1',
        'orin-2',
        'orin-3',
        'orin-4',
      ]);
      expect((await h.fleet.get(ctx, 'orin-2')).health.status).toBe('ok');

      const gates = { minHeartbeats: 1, observeMs: 60_000, confidenceMargin: 0.05, maxLatencyP95Ms: 100 };
      const r = await h.rollouts.start(ctx, {
        model: v2.ref,
        target: { tag: 'line-7' },
        strategy: { canary: 1, waves: [50, 100] },
        gates,
      });
      await h.tick();
      await h.controller.stop();
      h.controllers.splice(0);
      await h.heartbeatAll();
      const restarted = h.makeController(h.makeRollouts());
      h.controllers.push(restarted);
      for (let i = 0; i < 4; i++) {
        await h.tick(restarted);
        await h.heartbeatAll();
      }
      const done = await h.rollouts.status(ctx, r.id);
      expect(done.state).toBe('completed');
      expect(done.counts).toMatchObject({ healthy: 4 });
      expect(done.devices.map((d) => d.wave)).toEqual([0, 1, 2, 2]);
      expect(devs.map((d) => d.applied.size)).toEqual([1, 1, 1, 1]);

      const v3 = await h.registerModel('vests');
      devs[0]!.behaviour = 'fail';
      const bad = await h.rollouts.start(ctx, {
        model: v3.ref,
        target: { deviceIds: ['orin-1', 'orin-2', 'orin-3'] },
        gates,
      });
      await h.tick(restarted);
      const s = await h.rollouts.status(ctx, bad.id);
      expect(s.state).toBe('rolled_back');
      expect(s.devices.map((d) => d.state)).toEqual(['rolled_back', 'skipped', 'skipped']);
      expect(devs[1]!.received('deploy.apply')).toHaveLength(1);
      expect((await h.rollouts.list(ctx)).map((x) => x.id)).toEqual([bad.id, r.id]);
    } finally {
      await h.cleanup();
    }
  });

  it('takes feedback samples through review into a new dataset version and proposes a retrain', async () => {
    const h = await makeFeedbackHarness(db);
    try {
      await h.deviceSends('orin-1', 1);
      await h.deviceSends('orin-2', 2);
      const first = (await h.sut.list(h.ctx)).items[0]!;
      await h.sut.handleTelemetry({ ...(await h.deviceSends('orin-1', 1)), id: 'again' });
      const queue = await h.sut.list(h.ctx, { status: 'pending' });
      expect(queue.total).toBe(3);
      for (const s of queue.items) await h.sut.review(h.ctx, s.id, { decision: 'accept' });
      await h.sut.setPolicy(h.ctx, 'helmets-builtin', { minAcceptedSamples: 3 });
      const [proposal] = await h.sut.evaluatePolicies(h.ctx);
      expect(proposal?.plan.sampleIds).toHaveLength(3);
      const made = await h.sut.toDataset(h.ctx, { dataset: 'helmets' });
      expect(made.ref).toBe('helmets@2');
      expect((await h.sut.get(h.ctx, first.id)).usedIn).toBe('helmets@2');
      for (const conf of [0.7, 0.9]) await h.heartbeat('orin-1', ['line-7'], conf);
      const summary = await h.sut.summary(h.ctx);
      expect(summary.byDevice).toEqual({ 'orin-1': 2, 'orin-2': 1 });
      expect(summary.meanConfidenceByDay).toEqual([
        { day: '2026-11-20', tag: 'line-7', meanTopConfidence: 0.8, heartbeats: 2 },
      ]);
    } finally {
      await h.cleanup();
    }
  });
});
