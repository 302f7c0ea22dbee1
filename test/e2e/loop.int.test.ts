import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'rabbitmq-stream-js-client';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch } from '../../gpu-runner/runner.fixtures.js';
import { STREAMS } from '../../services/infra/broker/index.js';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../services.fixtures.js';
import {
  firstImage,
  importSyntheticDataset,
  modelBytes,
  payloads,
  sha256,
  startDevice,
  startE2ePlatform,
  trainModel,
  waitFor,
  waitOnline,
  waitRollout,
  type E2eEnv,
} from './harness.js';

// The loop of loop.e2e.test.ts (shortened) with the real broker and object storage: RabbitMQ streams
// (TEST_RABBITMQ_STREAM_URL, streams under a unique prefix) and S3 through s3rver started here.
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');
const torchMissing = await skipWithoutTorch();

const BUCKET = 'vision-e2e';
const DEVICES = ['jetson-r3-a', 'jetson-r3-b', 'jetson-r3-c'];

describe.skipIf(skip || torchMissing)('train → deploy → operate → retrain on RabbitMQ streams and S3', () => {
  const prefix = `e2e-${uniqueSuffix()}-`;
  let s3dir: string;
  let s3: S3rver;
  let s3url: string;
  let env: E2eEnv;

  beforeAll(async () => {
    s3dir = await mkdtemp(path.join(os.tmpdir(), 'e2e-s3rver-'));
    s3 = new S3rver({
      port: 0,
      address: '127.0.0.1',
      silent: true,
      directory: s3dir,
      configureBuckets: [{ name: BUCKET, configs: [] }],
    });
    const { port } = (await s3.run()) as { port: number };
    s3url = `http://127.0.0.1:${port}`;
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
    env = await startE2ePlatform({
      env: {
        RABBITMQ_STREAM_URL: SERVICE_URLS.rabbitmq,
        RABBITMQ_STREAM_PREFIX: prefix,
        S3_ENDPOINT: s3url,
        S3_BUCKET: BUCKET,
        S3_FORCE_PATH_STYLE: 'true',
      },
    });
  }, 120_000);

  afterAll(async () => {
    await env?.close();
    await s3?.close();
    if (s3dir) await rm(s3dir, { recursive: true, force: true });
    const u = new URL(SERVICE_URLS.rabbitmq);
    const raw = await connect({
      hostname: u.hostname,
      port: Number(u.port || 5552),
      username: decodeURIComponent(u.username || 'guest'),
      password: decodeURIComponent(u.password || 'guest'),
      vhost: '/',
    });
    for (const s of Object.values(STREAMS))
      await raw.deleteStream({ stream: `${prefix}${s}` }).catch(() => undefined);
    await raw.close();
  }, 60_000);

  it('trains, rolls out canary-first to three devices, serves, and turns accepted feedback into a new dataset version', async () => {
    const { platform, ctx } = env;
    expect(platform.infra.broker.adapter).toBe('rabbitmq');
    expect((await platform.infra.storage.health()).adapter).toBe('s3');

    const data = await importSyntheticDataset(env, 'e2e-helmets', { train: 16, val: 4, test: 6 });
    const mv1 = await trainModel(env, data.ref, 'e2e-helmets', 1);
    expect(mv1.lineage).toMatchObject({ datasetName: 'e2e-helmets', datasetVersion: 1, runnerId: env.gpuId });
    expect(sha256(await modelBytes(env, mv1))).toBe(mv1.model.sha256);

    for (const id of DEVICES) {
      await startDevice(env, {
        id,
        tags: ['line-3'],
        frames: data.testImages,
        uncertainBand: [0.001, 1],
        feedback: { perMinute: 1, perHour: 5 },
      });
    }
    await waitOnline(env, 'line-3', DEVICES);
    const started = await platform.rollouts.start(ctx, {
      model: mv1.ref,
      target: { tag: 'line-3' },
      strategy: { canary: 1, waves: [100] },
      gates: { healthTimeoutMs: 60_000, minHeartbeats: 2, observeMs: 15_000 },
    });
    const done = await waitRollout(env, started.id);
    expect(done.state, done.reason ?? '').toBe('completed');
    expect(done.counts.healthy).toBe(3);
    const applies = payloads(env.control, 'deploy.apply', (p) => p.rolloutId === started.id);
    expect(applies.map((p) => p.deviceId)[0]).toBe(done.devices.find((d) => d.wave === 0)!.deviceId);
    // devices downloaded straight from S3 through presigned URLs
    expect(applies.every((p) => p.model.url.startsWith(`${s3url}/${BUCKET}/`))).toBe(true);

    const image = await firstImage(data.testImages);
    for (const id of DEVICES) {
      const runner = env.devices.get(id)!;
      expect(runner.current?.versionId).toBe(mv1.id);
      const res = await fetch(`${runner.httpUrl}/infer`, {
        method: 'POST',
        body: new Uint8Array(image),
        headers: { 'x-device-key': runner.apiKey! },
      });
      expect(((await res.json()) as { modelVersionId: string }).modelVersionId).toBe(mv1.id);
    }
    expect((await platform.fleet.list(ctx, { tag: 'line-3' })).map((d) => d.modelVersionId)).toEqual([
      mv1.id,
      mv1.id,
      mv1.id,
    ]);

    const sample = await waitFor(
      'a feedback sample in the queue',
      async () => (await platform.feedback.list(ctx, { status: 'pending' })).items[0],
      60_000,
      500,
    );
    expect(sample).toMatchObject({ reason: 'low_confidence', modelVersionId: mv1.id });
    expect(sha256(await platform.infra.storage.getBuffer(sample.imageKey))).toBe(sample.sha256);
    await platform.feedback.review(ctx, sample.id, {
      decision: 'accept',
      boxes: [{ className: mv1.classNames[0]!, x1: 0.2, y1: 0.2, x2: 0.6, y2: 0.6 }],
    });
    const made = await platform.feedback.toDataset(ctx, { dataset: 'e2e-helmets', sampleIds: [sample.id] });
    expect(made.ref).toBe('e2e-helmets@2');
    const v2 = await platform.datasets.get(ctx, made.ref);
    expect(v2.lineage).toMatchObject({
      kind: 'samples',
      parent: 'e2e-helmets@1',
      source: 'feedback',
      feedbackSampleIds: [sample.id],
      modelVersions: [mv1.id],
    });
  }, 240_000);
});
