import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testContext } from '../datasets/datasets.fixtures.js';
import { makeEnvelope } from '../../protocol/envelope.js';
import { MemoryBroker } from '../infra/broker/memory.js';
import { STREAMS } from '../infra/broker/port.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { FeedbackService } from './feedback.service.js';
import { waitFor } from '../fleet/fleet.fixtures.js';
import { makeFeedbackHarness } from './feedback.fixtures.js';

describe(FeedbackService.name, () => {
  let db: SqliteDb;
  let h: Awaited<ReturnType<typeof makeFeedbackHarness>>;

  beforeEach(async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'via-fb-db-')), 'fb.db');
    db = new SqliteDb({ file });
    h = await makeFeedbackHarness(db);
  });
  afterEach(async () => {
    await h.cleanup();
    await db.close();
  });

  it('issues signed upload URLs under feedback/<device>/ and refuses bad requests', async () => {
    const urls = await h.sut.issueUploadUrls('jetson-1', 3);
    expect(urls).toHaveLength(3);
    expect(new Set(urls.map((u) => u.key)).size).toBe(3);
    for (const u of urls) {
      expect(u.key).toMatch(/^feedback\/jetson-1\/2026-11-20\/[0-9a-f-]{36}\.jpg$/);
      expect(u.url).toContain('op=put');
      expect(u.expiresAt).toBe(h.clock.now + 900_000);
    }
    await expect(h.sut.issueUploadUrls('../etc', 1)).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(h.sut.issueUploadUrls('jetson-1', 11)).rejects.toThrow(/1 to 10/);
  });

  it('queues samples once per image key and ignores ones it cannot trust', async () => {
    const first = await h.deviceSends('jetson-1', 1);
    await h.sut.handleTelemetry({ ...first, id: 'redelivered' });
    await h.deviceSends('jetson-2', 2, { reason: 'disagreement' });
    await h.sut.handleTelemetry(
      makeEnvelope(
        'feedback.sample',
        { ...first.payload, imageKey: 'feedback/jetson-9/x.jpg' },
        { source: 'x' },
      ),
    );
    await h.sut.handleTelemetry(
      makeEnvelope('feedback.sample', { ...first.payload, deviceId: 'jetson-2' }, { source: 'x' }),
    );
    await h.sut.handleTelemetry({ type: 'feedback.sample', payload: { deviceId: 3 } });
    const queue = await h.sut.list(h.ctx, { status: 'pending' });
    expect(queue.total).toBe(2);
    expect(queue.items[0]).toMatchObject({
      deviceId: 'jetson-1',
      modelVersionId: h.model.id,
      modelName: 'helmets-builtin',
      reason: 'low_confidence',
      topConfidence: 0.41,
      status: 'pending',
      width: 80,
      height: 60,
    });
    expect((await h.sut.list(h.ctx, { deviceId: 'jetson-2' })).items.map((s) => s.reason)).toEqual([
      'disagreement',
    ]);
    expect(h.events.filter((e) => e.type === 'feedback.received')).toHaveLength(2);
    expect(await h.sut.imageUrl(h.ctx, queue.items[0]!.id)).toContain('op=get');
  });

  it('feedback_to_dataset retried under the same idempotency key after a crash returns the first version and marks its samples used', async () => {
    await h.deviceSends('jetson-1', 1);
    await h.deviceSends('jetson-2', 2);
    const [a, b] = (await h.sut.list(h.ctx, { status: 'pending' })).items;
    await h.sut.review(h.ctx, a!.id, { decision: 'accept' });
    await h.sut.review(h.ctx, b!.id, { decision: 'accept' });
    const keyed = { ...h.ctx, idempotencyKey: 'apr_feedback_once' };
    const made = await h.sut.toDataset(keyed, { dataset: 'helmets' });
    // the crash window: the version exists, the samples are still claimed by the interrupted run
    await h.db.kysely
      .updateTable('feedback_samples')
      .set({ used_in: 'claim:apr_feedback_once', used_at: null })
      .execute();
    const again = await h.sut.toDataset(keyed, { dataset: 'helmets' });
    expect(again).toEqual(made);
    expect((await h.datasets.get(h.ctx, 'helmets')).latestVersion).toBe(2);
    expect((await h.sut.get(h.ctx, a!.id)).usedIn).toBe(made.ref);
    expect((await h.sut.get(h.ctx, b!.id)).usedIn).toBe(made.ref);
  });

  it('reviewed samples become a new dataset version with lineage', async () => {
    await h.deviceSends('jetson-1', 1);
    await h.deviceSends('jetson-1', 2);
    await h.deviceSends('jetson-2', 3);
    const [a, b, c] = (await h.sut.list(h.ctx, { status: 'pending' })).items;
    await expect(
      h.sut.review(testContext('default', 'viewer'), a!.id, { decision: 'reject', reason: 'x' }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    await expect(
      h.sut.review(h.ctx, a!.id, {
        decision: 'accept',
        boxes: [{ className: 'head', x1: 0.5, y1: 0.5, x2: 0.4, y2: 0.9 }],
      }),
    ).rejects.toThrow(/x2 must exceed x1/);
    const corrected = await h.sut.review(h.ctx, a!.id, {
      decision: 'accept',
      boxes: [{ className: 'head', x1: 0.1, y1: 0.1, x2: 0.5, y2: 0.6 }],
    });
    expect(corrected).toMatchObject({
      status: 'accepted',
      reviewedBy: 'u-operator',
      boxes: [{ className: 'head', x1: 0.1 }],
    });
    const asIs = await h.sut.review(h.ctx, b!.id, { decision: 'accept' });
    expect(asIs.boxes).toEqual([{ className: 'helmet', x1: 0.1, y1: 0.1, x2: 0.5, y2: 0.5 }]);
    await h.sut.review(h.ctx, c!.id, { decision: 'reject', reason: 'blurred frame' });

    const made = await h.sut.toDataset(h.ctx, { dataset: 'helmets' });
    expect(made).toEqual({ ref: 'helmets@2', sampleIds: [a!.id, b!.id] });
    const version = await h.datasets.get(h.ctx, 'helmets@2');
    expect(version.lineage).toMatchObject({
      source: 'feedback',
      parent: 'helmets@1',
      feedbackSampleIds: [a!.id, b!.id],
      devices: ['jetson-1'],
      modelVersions: [h.model.id],
      reviewedBy: ['u-operator'],
    });
    const images = await h.datasets.listImages(h.ctx, 'helmets@2', { limit: 100 });
    expect(images.total).toBe(4);
    const added = images.items.find((i) => i.sourcePath === `feedback/${a!.id}`);
    expect(added?.boxes.map((x) => x.className)).toEqual(['head']);

    expect((await h.sut.get(h.ctx, a!.id)).usedIn).toBe('helmets@2');
    await expect(h.sut.toDataset(h.ctx, { dataset: 'helmets' })).rejects.toThrow(
      /no accepted feedback sample waits/,
    );
    await expect(h.sut.toDataset(h.ctx, { dataset: 'helmets', sampleIds: [a!.id] })).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(h.sut.toDataset(h.ctx, { dataset: 'helmets', sampleIds: [c!.id] })).rejects.toThrow(
      /not accepted/,
    );
    await expect(
      h.sut.review(h.ctx, a!.id, { decision: 'reject', reason: 'changed my mind' }),
    ).rejects.toMatchObject({ code: 'conflict' });
    expect(h.events.find((e) => e.type === 'feedback.dataset_created')).toMatchObject({ ref: 'helmets@2' });

    const summary = await h.sut.summary(h.ctx);
    expect(summary).toMatchObject({
      byReason: { low_confidence: 3 },
      byStatus: { accepted: 2, rejected: 1 },
      byDevice: { 'jetson-1': 2, 'jetson-2': 1 },
      byModelVersion: { [h.model.id]: 3 },
      acceptedNotInDataset: 0,
    });
  });

  it('consumes samples and heartbeats from the broker; a replayed heartbeat counts in the hour it was sent', async () => {
    const broker = new MemoryBroker();
    const sub = await h.sut.startConsumers(broker);
    try {
      const sample = await h.deviceSends('jetson-5', 7);
      await h.db.kysely.deleteFrom('feedback_samples').execute();
      await broker.publish(STREAMS.telemetry, { ...sample, id: 'via-broker' });
      const old = makeEnvelope(
        'device.heartbeat',
        {
          deviceId: 'jetson-5',
          name: 'j5',
          tags: ['line-3'],
          hardware: 'x',
          runtime: {},
          provider: 'cpu',
          modelVersionId: null,
          state: 'idle',
          fps: 0,
          latencyP50Ms: 0,
          latencyP95Ms: 0,
          meanTopConfidence: 0.9,
          cpuPercent: 0,
          memoryMb: 0,
          temperatureC: null,
        },
        { source: 'jetson-5' },
      );
      await broker.publish(STREAMS.telemetry, {
        ...old,
        ts: new Date(h.clock.now - 26 * 3_600_000).toISOString(),
      });
      await waitFor(
        async () => (await h.sut.summary(h.ctx)).meanConfidenceByDay.length === 1,
        'heartbeat applied',
      );
      expect((await h.sut.list(h.ctx)).items.map((s) => s.deviceId)).toEqual(['jetson-5']);
      expect((await h.sut.summary(h.ctx)).meanConfidenceByDay).toEqual([
        { day: '2026-11-19', tag: 'line-3', meanTopConfidence: 0.9, heartbeats: 1 },
      ]);
    } finally {
      await sub.close();
      await broker.close();
    }
  });

  it('a failed dataset write releases the samples for another try', async () => {
    await h.deviceSends('jetson-1', 1);
    const [s] = (await h.sut.list(h.ctx)).items;
    await h.sut.review(h.ctx, s!.id, { decision: 'accept' });
    await expect(h.sut.toDataset(h.ctx, { dataset: 'no-such-dataset' })).rejects.toMatchObject({
      code: 'not_found',
    });
    expect((await h.sut.get(h.ctx, s!.id)).usedIn).toBeNull();
    expect((await h.sut.toDataset(h.ctx, { dataset: 'helmets' })).ref).toBe('helmets@2');
  });

  it('a sample-count policy proposes a retrain plan and nothing trains', async () => {
    await h.sut.setPolicy(h.ctx, 'helmets-builtin', { minAcceptedSamples: 2 });
    await expect(h.sut.setPolicy(h.ctx, 'helmets-builtin', {})).rejects.toThrow(
      /set minAcceptedSamples, confidenceDropOver or both/,
    );
    await h.deviceSends('jetson-1', 1);
    await h.deviceSends('jetson-1', 2);
    const items = (await h.sut.list(h.ctx)).items;
    await h.sut.review(h.ctx, items[0]!.id, { decision: 'accept' });
    expect(await h.sut.evaluatePolicies(h.ctx)).toEqual([]);
    await h.sut.review(h.ctx, items[1]!.id, { decision: 'accept' });
    const [proposal] = await h.sut.evaluatePolicies(h.ctx);
    expect(proposal).toMatchObject({
      model: 'helmets-builtin',
      trigger: 'min_accepted_samples',
      plan: {
        dataset: 'helmets',
        sampleIds: items.map((i) => i.id),
        config: { backend: 'builtin', epochs: 3, imgsz: 320 },
        reason: '2 accepted feedback sample(s) wait for a dataset version (policy: at least 2)',
      },
    });
    expect(proposal!.plan.steps[0]).toBe('add the 2 accepted feedback sample(s) to helmets as a new version');
    expect(h.events.filter((e) => e.type === 'feedback.retrain_proposed')).toHaveLength(1);
    expect(await h.sut.evaluatePolicies(h.ctx)).toEqual([]);
    expect(await h.sut.proposals(h.ctx)).toHaveLength(1);
    expect((await h.datasets.listVersions(h.ctx, 'helmets')).map((v) => v.version)).toEqual([1]);
    expect(await h.db.kysely.selectFrom('training_jobs').selectAll().execute()).toEqual([]);
    expect((await h.registry.list(h.ctx)).map((v) => v.ref)).toEqual(['helmets-builtin@1']);
  });

  it('a confidence-drop policy compares the last window with the one before, per tag', async () => {
    await h.sut.setPolicy(h.ctx, 'helmets-builtin', {
      confidenceDropOver: { tag: 'line-3', drop: 0.1, windowHours: 24 },
      cooldownHours: 12,
    });
    const start = h.clock.now;
    h.clock.now = start - 30 * 3_600_000;
    for (const conf of [0.84, 0.86]) await h.heartbeat('jetson-1', ['line-3'], conf);
    await h.heartbeat('jetson-9', ['line-4'], 0.2);
    h.clock.now = start - 2 * 3_600_000;
    for (const conf of [0.8, 0.82]) await h.heartbeat('jetson-1', ['line-3'], conf);
    h.clock.now = start;
    expect(await h.sut.evaluatePolicies(h.ctx)).toEqual([]);
    h.clock.now = start - 3_600_000;
    for (const conf of [0.5, 0.52]) await h.heartbeat('jetson-2', ['line-3'], conf);
    h.clock.now = start;
    const [proposal] = await h.sut.evaluatePolicies(h.ctx);
    expect(proposal).toMatchObject({
      trigger: 'confidence_drop',
      plan: { dataset: 'helmets', sampleIds: [] },
    });
    expect(proposal!.plan.reason).toBe(
      'mean top confidence on line-3 fell from 0.850 to 0.660 over 24 h (policy: a drop of more than 0.1)',
    );
    const summary = await h.sut.summary(h.ctx, { days: 3 });
    expect(summary.meanConfidenceByDay).toEqual([
      { day: '2026-11-19', tag: 'line-3', meanTopConfidence: 0.85, heartbeats: 2 },
      { day: '2026-11-19', tag: 'line-4', meanTopConfidence: 0.2, heartbeats: 1 },
      {
        day: '2026-11-20',
        tag: 'line-3',
        meanTopConfidence: expect.closeTo(0.66, 5) as number,
        heartbeats: 4,
      },
    ]);
    h.clock.now = start + 11 * 3_600_000;
    expect(await h.sut.evaluatePolicies(h.ctx)).toEqual([]);
    h.clock.now = start + 13 * 3_600_000;
    expect((await h.sut.evaluatePolicies(h.ctx)).map((p) => p.trigger)).toEqual(['confidence_drop']);
  });
});
