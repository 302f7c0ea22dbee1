import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestDetector } from '../../edge-runner/models.fixtures.js';
import { skipWithoutTorch } from '../../gpu-runner/runner.fixtures.js';
import type { ModelVersion } from '../../services/models/index.js';
import {
  firstImage,
  importSyntheticDataset,
  modelBytes,
  payloads,
  registerModelFile,
  sha256,
  startDevice,
  startE2ePlatform,
  stopDevice,
  trainModel,
  waitFor,
  waitOnline,
  waitRollout,
  type E2eEnv,
} from './harness.js';

// The whole loop in embedded mode: the real services from createPlatform, a GpuRunner training the
// builtin PyTorch detector, and real EdgeRunners in process, all on the platform's broker and storage.
const torchMissing = await skipWithoutTorch();

const LINE3 = ['jetson-l3-a', 'jetson-l3-b', 'jetson-l3-c'];
const FAST_GATES = { healthTimeoutMs: 60_000, minHeartbeats: 2, observeMs: 15_000 };

describe.skipIf(torchMissing)('train → deploy → operate → retrain, embedded', () => {
  let env: E2eEnv;
  let data: { ref: string; dir: string; testImages: string };
  let mv1: ModelVersion;

  beforeAll(async () => {
    env = await startE2ePlatform();
    data = await importSyntheticDataset(env, 'e2e-helmets');
    mv1 = await trainModel(env, data.ref, 'e2e-helmets');
  }, 300_000);

  afterAll(async () => {
    await env?.close();
  }, 60_000);

  const deploysTo = (rolloutId: string) =>
    payloads(env.control, 'deploy.apply', (p) => p.rolloutId === rolloutId).map((p) => p.deviceId);
  const rollbacksTo = (rolloutId: string) =>
    payloads(env.control, 'deploy.rollback', (p) => p.rolloutId === rolloutId).map((p) => p.deviceId);

  it('imports, trains, registers, rolls out canary-first to line-3, serves, and turns accepted feedback into a new dataset version', async () => {
    const { platform, ctx } = env;
    expect(mv1.ref).toBe('e2e-helmets@1');
    expect(mv1.lineage).toMatchObject({ datasetName: 'e2e-helmets', datasetVersion: 1, runnerId: env.gpuId });
    expect(mv1.lineage.jobId).toMatch(/^job/);
    expect(mv1.model).toMatchObject({ layout: 'ultralytics', inputSize: 64 });
    expect(mv1.model.sha256).toBe(sha256(await modelBytes(env, mv1)));
    expect(mv1.artifacts.map((a) => a.name)).toEqual(
      expect.arrayContaining(['model.onnx', 'metrics.json', 'report.md']),
    );

    for (const id of LINE3) {
      await startDevice(env, {
        id,
        tags: ['line-3'],
        frames: data.testImages,
        uncertainBand: [0.001, 1],
        feedback: { perMinute: 2, perHour: 10 },
      });
    }
    await waitOnline(env, 'line-3', LINE3);

    const input = {
      model: mv1.ref,
      target: { tag: 'line-3' },
      strategy: { canary: 1, waves: [100] },
      gates: FAST_GATES,
    };
    const plan = await platform.rollouts.plan(ctx, input);
    expect(plan.waves.map((w) => w.deviceIds.length)).toEqual([1, 2]);
    const canary = plan.waves[0]!.deviceIds[0]!;
    const started = await platform.rollouts.start(ctx, input);
    const done = await waitRollout(env, started.id);
    expect(done.state, done.reason ?? '').toBe('completed');
    expect(done.counts.healthy).toBe(3);
    expect(done.reason).toBeNull();

    // canary first: the rest of the group got nothing until the canary passed its gates
    const sent = deploysTo(started.id);
    expect(sent[0]).toBe(canary);
    expect([...sent].sort()).toEqual([...LINE3].sort());
    const c = done.devices.find((d) => d.deviceId === canary)!;
    expect(c.wave).toBe(0);
    expect(c.heartbeats).toBeGreaterThanOrEqual(2);
    for (const d of done.devices.filter((x) => x.deviceId !== canary)) {
      expect(d.wave).toBe(1);
      expect(d.sentAt!).toBeGreaterThanOrEqual(c.verifiedAt!);
    }

    // all three serve the new model: runner state, the device API, heartbeats and the fleet view
    const image = await firstImage(data.testImages);
    for (const id of LINE3) {
      const runner = env.devices.get(id)!;
      expect(runner.current).toMatchObject({ versionId: mv1.id, sha256: mv1.model.sha256, provider: 'cpu' });
      const res = await fetch(`${runner.httpUrl}/infer`, {
        method: 'POST',
        body: new Uint8Array(image),
        headers: { 'content-type': 'image/jpeg', 'x-device-key': runner.apiKey! },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { modelVersionId: string; detections: unknown[]; width: number };
      expect(body.modelVersionId).toBe(mv1.id);
      expect(body.width).toBe(96);
      const health = (await (await fetch(`${runner.httpUrl}/healthz`)).json()) as {
        ok: boolean;
        state: string;
      };
      expect(health).toMatchObject({ ok: true, state: 'serving' });
      await waitFor(
        `a heartbeat from ${id} on ${mv1.ref}`,
        () =>
          payloads(
            env.telemetry,
            'device.heartbeat',
            (p) => p.deviceId === id && p.modelVersionId === mv1.id && p.state === 'serving',
          ).length > 0,
      );
    }
    const fleet = await platform.fleet.list(ctx, { tag: 'line-3' });
    expect(fleet.map((d) => [d.id, d.modelVersionId, d.state])).toEqual(
      LINE3.map((id) => [id, mv1.id, 'serving']),
    );

    // uncertain frames reach the review queue through signed uploads and feedback.sample
    const queue = await waitFor(
      'a pending feedback sample from every device',
      async () => {
        const q = await platform.feedback.list(ctx, { status: 'pending', limit: 100 });
        return LINE3.every((id) => q.items.filter((s) => s.deviceId === id).length >= 1)
          ? q.items
          : undefined;
      },
      60_000,
      500,
    );
    for (const s of queue) {
      expect(s).toMatchObject({
        reason: 'low_confidence',
        modelVersionId: mv1.id,
        modelName: 'e2e-helmets',
        width: 96,
        height: 96,
      });
      expect(s.imageKey).toMatch(new RegExp(`^feedback/${s.deviceId}/`));
      const stored = await platform.infra.storage.getBuffer(s.imageKey);
      expect(sha256(stored)).toBe(s.sha256);
    }

    // a reviewer accepts two (correcting the boxes) and rejects one; the accepted ones become e2e-helmets@2
    const [a, b, r] = queue;
    await platform.feedback.review(ctx, a!.id, {
      decision: 'accept',
      boxes: [{ className: mv1.classNames[0]!, x1: 0.1, y1: 0.1, x2: 0.4, y2: 0.45 }],
    });
    await platform.feedback.review(ctx, b!.id, {
      decision: 'accept',
      boxes: [{ className: mv1.classNames[1]!, x1: 0.5, y1: 0.2, x2: 0.9, y2: 0.7 }],
    });
    await platform.feedback.review(ctx, r!.id, { decision: 'reject', reason: 'blurred frame' });
    const made = await platform.feedback.toDataset(ctx, { dataset: 'e2e-helmets' });
    expect(made.ref).toBe('e2e-helmets@2');
    expect([...made.sampleIds].sort()).toEqual([a!.id, b!.id].sort());
    const v1 = await platform.datasets.get(ctx, data.ref);
    const v2 = await platform.datasets.get(ctx, made.ref);
    expect(v2.stats.images).toBe(v1.stats.images + 2);
    expect(v2.lineage).toMatchObject({
      kind: 'samples',
      parent: 'e2e-helmets@1',
      source: 'feedback',
      modelVersions: [mv1.id],
      samples: 2,
    });
    expect([...(v2.lineage.feedbackSampleIds as string[])].sort()).toEqual([a!.id, b!.id].sort());
    expect(await platform.feedback.get(ctx, a!.id)).toMatchObject({
      status: 'accepted',
      usedIn: 'e2e-helmets@2',
    });
    expect(await platform.feedback.get(ctx, r!.id)).toMatchObject({ status: 'rejected', usedIn: null });
  }, 180_000);

  it('rejects a corrupted artifact (sha256 mismatch): the canary keeps serving the old model, the rollout reports why, the rest is untouched', async () => {
    const { platform, ctx } = env;
    // a valid model no device has yet (devices keep models by sha256), registered; then the stored object is replaced
    const { bytes } = await buildTestDetector({
      inputSize: 64,
      names: mv1.classNames,
      detections: [{ cx: 32, cy: 32, w: 16, h: 16, cls: 0, score: 0.9 }],
    });
    const mv2 = await registerModelFile(env, 'e2e-helmets', bytes, {
      inputSize: 64,
      classNames: mv1.classNames,
      note: 'corrupted in storage after registration',
    });
    const corrupted = Buffer.from(bytes);
    corrupted[corrupted.length - 1] = corrupted[corrupted.length - 1]! ^ 0xff;
    await platform.infra.storage.put(mv2.model.key, corrupted);
    expect(sha256(corrupted)).not.toBe(mv2.model.sha256);

    const started = await platform.rollouts.start(ctx, {
      model: mv2.ref,
      target: { tag: 'line-3' },
      strategy: { canary: 1, waves: [100] },
      gates: FAST_GATES,
    });
    const done = await waitRollout(env, started.id);
    expect(done.state).toBe('rolled_back');
    const canary = done.devices.find((d) => d.wave === 0 && d.sentAt !== null)!;
    expect(done.reason).toContain(`gate failed on ${canary.name}`);
    expect(done.reason).toContain('sha256 mismatch');
    expect(canary.message).toContain('sha256 mismatch');
    expect(deploysTo(started.id)).toEqual([canary.deviceId]);
    expect(done.devices.filter((d) => d.deviceId !== canary.deviceId).map((d) => d.state)).toEqual([
      'skipped',
      'skipped',
    ]);

    const failed = await waitFor(
      'the failed report',
      () =>
        payloads(
          env.telemetry,
          'device.health',
          (p) => p.rolloutId === started.id && p.state === 'failed',
        )[0],
    );
    expect(failed.message).toContain(`still serving ${mv1.id}`);
    for (const id of LINE3) expect(env.devices.get(id)!.current?.versionId).toBe(mv1.id);
    const canaryRunner = env.devices.get(canary.deviceId)!;
    const res = await fetch(`${canaryRunner.httpUrl}/infer`, {
      method: 'POST',
      body: new Uint8Array(await firstImage(data.testImages)),
      headers: { 'x-device-key': canaryRunner.apiKey! },
    });
    expect(((await res.json()) as { modelVersionId: string }).modelVersionId).toBe(mv1.id);
  }, 120_000);

  it('rolls back automatically when the canary fails the health gate (output matches no layout); no other device is sent anything', async () => {
    const { platform, ctx } = env;
    const bad = await buildTestDetector({ inputSize: 64, names: mv1.classNames, outputShape: [1, 2, 3, 4] });
    const mv3 = await registerModelFile(env, 'e2e-helmets', bad.bytes, {
      inputSize: 64,
      classNames: mv1.classNames,
      note: 'output shape of no known layout',
    });
    const started = await platform.rollouts.start(ctx, {
      model: mv3.ref,
      target: { tag: 'line-3' },
      strategy: { canary: 1, waves: [100] },
      gates: FAST_GATES,
    });
    const done = await waitRollout(env, started.id);
    expect(done.state).toBe('rolled_back');
    const canary = done.devices.find((d) => d.sentAt !== null)!;
    expect(canary.state).toBe('rolled_back');
    expect(canary.message).toMatch(/match no known detector layout/);
    expect(deploysTo(started.id)).toEqual([canary.deviceId]);
    expect(await waitFor('the deploy.rollback to the canary', () => rollbacksTo(started.id)[0])).toBe(
      canary.deviceId,
    );
    expect(rollbacksTo(started.id)).toHaveLength(1);
    for (const d of done.devices.filter((x) => x.deviceId !== canary.deviceId)) {
      expect(d.state).toBe('skipped');
      expect(d.sentAt).toBeNull();
    }
    for (const id of LINE3) expect(env.devices.get(id)!.current?.versionId).toBe(mv1.id);
  }, 120_000);

  it('rolls the canary back to its previous model when a healthy load fails the latency gate', async () => {
    const { platform, ctx } = env;
    const mv4 = await registerModelFile(env, 'e2e-helmets', await modelBytes(env, mv1), {
      inputSize: 64,
      classNames: mv1.classNames,
      note: 'same weights, a new version',
    });
    const started = await platform.rollouts.start(ctx, {
      model: mv4.ref,
      target: { tag: 'line-3' },
      strategy: { canary: 1, waves: [100] },
      gates: { ...FAST_GATES, maxLatencyP95Ms: 0.001 },
    });
    const done = await waitRollout(env, started.id);
    expect(done.state).toBe('rolled_back');
    const canary = done.devices.find((d) => d.sentAt !== null)!;
    expect(canary.message).toMatch(/latency .* above the 0.001 ms gate/);
    expect(deploysTo(started.id)).toEqual([canary.deviceId]);
    const runner = env.devices.get(canary.deviceId)!;
    // the device switched (it reported healthy), then went back to the model it ran before
    const back = await waitFor(
      'the canary to report rolled_back',
      () =>
        payloads(
          env.telemetry,
          'device.health',
          (p) => p.rolloutId === started.id && p.state === 'rolled_back',
        )[0],
      30_000,
    );
    expect(back.message).toContain(`rolled back to ${mv1.id}`);
    expect(
      payloads(env.telemetry, 'device.health', (p) => p.rolloutId === started.id && p.state === 'healthy'),
    ).toHaveLength(1);
    expect(runner.current?.versionId).toBe(mv1.id);
    for (const id of LINE3) expect(env.devices.get(id)!.current?.versionId).toBe(mv1.id);
  }, 120_000);

  it('applies the offline policy: waits, then skips a device that stays offline or fails the rollout; a device back in time is updated', async () => {
    const { platform, ctx } = env;
    const line4 = ['jetson-l4-a', 'jetson-l4-b', 'jetson-l4-c'];
    for (const id of line4) await startDevice(env, { id, tags: ['line-4'], frames: data.testImages });
    await waitOnline(env, 'line-4', line4);
    await stopDevice(env, 'jetson-l4-c');
    await waitFor(
      'jetson-l4-c offline',
      async () => !(await platform.fleet.get(ctx, 'jetson-l4-c')).health.online,
      30_000,
    );

    const skipInput = {
      model: mv1.ref,
      target: { tag: 'line-4' },
      strategy: { canary: 1, waves: [100] },
      gates: FAST_GATES,
      offline: { waitMs: 4000, action: 'skip' as const },
    };
    const plan = await platform.rollouts.plan(ctx, skipInput);
    expect(plan.warnings.join(' ')).toMatch(/jetson-l4-c.*waited for up to 4 s, then skipped/);
    expect(plan.waves[0]!.deviceIds).not.toContain('jetson-l4-c');
    const progress: Array<{ rolloutId: string; message: string }> = [];
    const unsubscribe = platform.events.on((e) => {
      if (e.type === 'rollout.progress')
        progress.push(e as unknown as { rolloutId: string; message: string });
    });
    const skipping = await platform.rollouts.start(ctx, skipInput);
    const waiting = await waitFor(
      'the offline device shown as waiting',
      async () => {
        const s = await platform.rollouts.status(ctx, skipping.id);
        return s.devices.find(
          (d) => d.deviceId === 'jetson-l4-c' && d.deviceState === 'offline' && d.waitingSince !== null,
        );
      },
      60_000,
    );
    expect(waiting.message).toMatch(/offline; waiting up to 4 s, then skip/);
    const skipped = await waitRollout(env, skipping.id);
    expect(skipped.state).toBe('completed');
    expect(skipped.reason).toBe('2 of 3 device(s) updated; the rest were skipped');
    const c = skipped.devices.find((d) => d.deviceId === 'jetson-l4-c')!;
    expect(c.state).toBe('skipped');
    expect(c.message).toMatch(/^skipped: offline for \d+ s \(policy: wait 4 s, then skip\)$/);
    expect(deploysTo(skipping.id).sort()).toEqual(['jetson-l4-a', 'jetson-l4-b']);
    for (const id of ['jetson-l4-a', 'jetson-l4-b'])
      expect(env.devices.get(id)!.current?.versionId).toBe(mv1.id);
    // the UI's progress events say the same
    const said = progress.filter((p) => p.rolloutId === skipping.id).map((p) => p.message);
    expect(said).toContain('jetson-l4-c is offline; waiting up to 4 s');
    expect(said.some((m) => /^jetson-l4-c skipped: offline for \d+ s/.test(m))).toBe(true);
    unsubscribe();

    // the same version again: only the offline device needs it, the policy now fails the rollout
    const failing = await platform.rollouts.start(ctx, {
      ...skipInput,
      offline: { waitMs: 3000, action: 'fail' },
    });
    expect(failing.devices.map((d) => d.deviceId)).toEqual(['jetson-l4-c']);
    const failed = await waitRollout(env, failing.id);
    expect(failed.state).toBe('failed');
    expect(failed.reason).toMatch(/^jetson-l4-c offline for \d+ s \(policy: wait 3 s, then fail\)$/);
    expect(failed.devices[0]).toMatchObject({ state: 'failed', sentAt: null });
    expect(deploysTo(failing.id)).toEqual([]);

    // waiting pays off: a device back within the wait gets the model, and nobody is skipped
    const mv5 = await registerModelFile(env, 'e2e-helmets', await modelBytes(env, mv1), {
      inputSize: 64,
      classNames: mv1.classNames,
      note: 'same weights, for line-4',
    });
    const waitingRollout = await platform.rollouts.start(ctx, {
      ...skipInput,
      model: mv5.ref,
      offline: { waitMs: 60_000, action: 'skip' },
    });
    await waitFor(
      'jetson-l4-c waited for',
      async () => {
        const s = await platform.rollouts.status(ctx, waitingRollout.id);
        return s.devices.find((d) => d.deviceId === 'jetson-l4-c' && d.deviceState === 'offline');
      },
      60_000,
    );
    await startDevice(env, { id: 'jetson-l4-c', tags: ['line-4'], frames: data.testImages });
    const back = await waitRollout(env, waitingRollout.id);
    expect(back.state).toBe('completed');
    expect(back.reason).toBeNull();
    expect(back.devices.map((d) => [d.deviceId, d.state])).toEqual(line4.map((id) => [id, 'healthy']));
    expect(env.devices.get('jetson-l4-c')!.current?.versionId).toBe(mv5.id);
  }, 120_000);
});
