import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeEnvelope, STREAMS } from '../services/infra/broker/index.js';
import { silentLogger } from '../core/log.js';
import { EdgeRunner, type EdgeRunnerOptions } from './edge-runner.js';
import { FfmpegSource, FolderSource, HttpPushSource } from './sources/index.js';
import { EmbeddedPlatform, FlakyBroker, type DeployModel } from './platform.fixtures.js';
import { buildTestDetector } from './models.fixtures.js';

const run = promisify(execFile);
let root: string;
let platform: EmbeddedPlatform;
let framesDir: string;
const models: Record<'v1' | 'v2' | 'uncertain' | 'threeClass' | 'nan', Buffer> = {} as never;
const runners: EdgeRunner[] = [];

const box = { cx: 32, cy: 32, w: 20, h: 20 };

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'edge-runner-'));
  platform = new EmbeddedPlatform(path.join(root, 'storage'));
  await platform.start();
  framesDir = path.join(root, 'frames');
  await mkdir(framesDir);
  for (let i = 0; i < 3; i++) {
    const img = await sharp({
      create: { width: 96, height: 64, channels: 3, background: { r: 40 * i, g: 120, b: 200 } },
    })
      .jpeg()
      .toBuffer();
    await writeFile(path.join(framesDir, `f${i}.jpg`), img);
  }
  const dir = path.join(root, 'models');
  await mkdir(dir);
  const [v1, v2, uncertain, threeClass, nan] = await Promise.all([
    buildTestDetector({ detections: [{ ...box, cls: 0, score: 0.9 }] }, dir),
    buildTestDetector({ detections: [{ ...box, cls: 1, score: 0.8 }], padFloats: 1000 }, dir),
    buildTestDetector({ detections: [{ ...box, cls: 0, score: 0.4 }], seed: 3, padFloats: 10 }, dir),
    buildTestDetector({ names: ['a', 'b', 'c'], detections: [{ ...box, cls: 2, score: 0.9 }] }, dir),
    buildTestDetector({ nan: true }, dir),
  ]);
  Object.assign(models, {
    v1: v1.bytes,
    v2: v2.bytes,
    uncertain: uncertain.bytes,
    threeClass: threeClass.bytes,
    nan: nan.bytes,
  });
}, 60_000);

afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});

afterAll(async () => {
  await platform.close();
  await rm(root, { recursive: true, force: true });
});

let seq = 0;
function runner(over: Partial<EdgeRunnerOptions> & { dataDir?: string } = {}): EdgeRunner {
  const deviceId = over.deviceId ?? `jetson-${++seq}`;
  const r = new EdgeRunner({
    deviceId,
    tags: ['line-3'],
    broker: platform.broker,
    dataDir: over.dataDir ?? path.join(root, 'devices', deviceId),
    source: new FolderSource({ dir: framesDir, maxFps: 50 }),
    log: silentLogger(),
    heartbeatMs: 200,
    hardware: 'test-board',
    ...over,
  });
  runners.push(r);
  return r;
}

const healthStates = (deviceId: string, deploymentId: string) =>
  platform
    .messages('device.health', (p) => p.deviceId === deviceId && p.deploymentId === deploymentId)
    .map((p) => p.state);

async function deployAndWait(
  r: EdgeRunner,
  deploymentId: string,
  model: DeployModel,
  terminal: 'healthy' | 'failed' = 'healthy',
) {
  await platform.deploy(r.deviceId, deploymentId, model);
  return platform
    .waitFor(
      'device.health',
      (p) =>
        p.deviceId === r.deviceId &&
        p.deploymentId === deploymentId &&
        (p.state === 'healthy' || p.state === 'failed'),
    )
    .then((h) => {
      expect(h.state, h.message).toBe(terminal);
      return h;
    });
}

describe(EdgeRunner.name, () => {
  it('registers with a heartbeat, deploys through download → verify → load → healthy and infers folder frames', async () => {
    const r = runner();
    await r.start();
    const first = await platform.waitFor('device.heartbeat', (p) => p.deviceId === r.deviceId);
    expect(first).toMatchObject({
      tags: ['line-3'],
      hardware: 'test-board',
      state: 'idle',
      modelVersionId: null,
      provider: 'cpu',
    });
    expect(first.runtime.onnxruntime).toMatch(/^\d+\.\d+/);

    const model = await platform.publishModel(models.v1, { versionId: 'mv-1' });
    const healthy = await deployAndWait(r, 'dep-1', model);
    expect(healthStates(r.deviceId, 'dep-1')).toEqual(['downloading', 'verifying', 'loading', 'healthy']);
    expect(healthy.message).toBe('serving on cpu');
    expect(healthy.latencyP95Ms).toBeGreaterThan(0);

    const hb = await platform.waitFor(
      'device.heartbeat',
      (p) => p.deviceId === r.deviceId && p.state === 'serving' && p.fps > 0 && p.latencyP95Ms > 0,
    );
    expect(hb.modelVersionId).toBe('mv-1');
    expect(hb.meanTopConfidence).toBeCloseTo(0.9, 3);
    expect(hb.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(hb.memoryMb).toBeGreaterThan(0);
    expect(r.current).toMatchObject({ versionId: 'mv-1', provider: 'cpu' });
  });

  it('falls back from tensorrt to cpu when TensorRT cannot create a session, and reports cpu', async () => {
    const r = runner({ providers: ['tensorrt', 'cpu'], tensorrtVersion: '10.3.0' });
    await r.start();
    const model = await platform.publishModel(models.v1, { versionId: 'mv-1' });
    const healthy = await deployAndWait(r, 'dep-trt', model);
    expect(healthy.message).toBe('serving on cpu');
    const hb = await platform.waitFor(
      'device.heartbeat',
      (p) => p.deviceId === r.deviceId && p.modelVersionId === 'mv-1',
    );
    expect(hb.provider).toBe('cpu');
    expect(hb.runtime.tensorrt).toBe('10.3.0');
    // No engine was cached yet, so the load ran as a TensorRT build, visible in the heartbeats.
    const building = platform.messages(
      'device.heartbeat',
      (p) => p.deviceId === r.deviceId && p.state === 'building',
    );
    expect(building.length).toBeGreaterThan(0);
    expect(building[0]!.buildProgress).toBeGreaterThanOrEqual(0);
    expect(building[0]!.modelVersionId).toBeNull();
    const cacheDirs = await readdir(path.join(root, 'devices', r.deviceId, 'trt-cache'));
    expect(cacheDirs).toEqual([`${model.sha256.slice(0, 16)}-test-board-trt10.3.0`]);
  });

  it('rejects a corrupted artifact (sha256 mismatch) and keeps serving the old model', async () => {
    const r = runner({ httpPort: 0 });
    await r.start();
    await deployAndWait(r, 'dep-a', await platform.publishModel(models.v1, { versionId: 'mv-1' }));
    const tampered = await platform.publishModel(models.v2, {
      versionId: 'mv-2',
      sha256: createHash('sha256').update(models.v1).update('x').digest('hex'),
      size: models.v2.length,
    });
    const failed = await deployAndWait(r, 'dep-b', tampered, 'failed');
    expect(failed.message).toMatch(/sha256 mismatch.*not loaded.*still serving mv-1/);
    expect(healthStates(r.deviceId, 'dep-b')).toEqual(['downloading', 'verifying', 'failed']);
    expect(r.current?.versionId).toBe('mv-1');
    const jpeg = await readFile(path.join(framesDir, 'f0.jpg'));
    const res = await fetch(`${r.httpUrl}/infer`, {
      method: 'POST',
      body: new Uint8Array(jpeg),
      headers: { 'content-type': 'image/jpeg', 'x-device-key': r.apiKey! },
    });
    expect(((await res.json()) as { modelVersionId: string }).modelVersionId).toBe('mv-1');
  });

  it('rejects models that fail the self-test (class count mismatch, non-finite output)', async () => {
    const r = runner();
    await r.start();
    await deployAndWait(r, 'dep-ok', await platform.publishModel(models.v1, { versionId: 'mv-1' }));
    const wrongShape = await platform.publishModel(models.threeClass, {
      versionId: 'mv-3',
      classNames: ['helmet', 'head'],
    });
    const f1 = await deployAndWait(r, 'dep-shape', wrongShape, 'failed');
    expect(f1.message).toMatch(/self-test failed: the model outputs 3 classes .* declares 2/);
    const nan = await platform.publishModel(models.nan, { versionId: 'mv-4' });
    const f2 = await deployAndWait(r, 'dep-nan', nan, 'failed');
    expect(f2.message).toMatch(/non-finite value/);
    expect(r.current?.versionId).toBe('mv-1');
    const hb = await platform.waitFor(
      'device.heartbeat',
      (p) => p.deviceId === r.deviceId && p.state === 'serving' && p.modelVersionId === 'mv-1',
    );
    expect(hb.previousModelVersionId).toBeNull();
  });

  it('rolls back to the previous model, once, and comes back on the last model after a restart', async () => {
    const dataDir = path.join(root, 'devices', 'restart-me');
    const r = runner({ deviceId: 'restart-me', dataDir });
    await r.start();
    await deployAndWait(r, 'dep-1', await platform.publishModel(models.v1, { versionId: 'mv-1' }));
    await deployAndWait(r, 'dep-2', await platform.publishModel(models.v2, { versionId: 'mv-2' }));
    expect(r.current?.versionId).toBe('mv-2');
    const hb = await platform.waitFor(
      'device.heartbeat',
      (p) => p.deviceId === 'restart-me' && p.modelVersionId === 'mv-2',
    );
    expect(hb.previousModelVersionId).toBe('mv-1');

    await platform.rollback('restart-me', 'dep-2', 'latency gate failed');
    const rb = await platform.waitFor(
      'device.health',
      (p) => p.deviceId === 'restart-me' && p.deploymentId === 'dep-2' && p.state === 'rolled_back',
    );
    expect(rb).toMatchObject({ modelVersionId: 'mv-2', message: 'rolled back to mv-1: latency gate failed' });
    expect(r.current?.versionId).toBe('mv-1');
    // The same rollback again must not flip the device back.
    await platform.rollback('restart-me', 'dep-2', 'latency gate failed');
    await platform.waitFor(
      'device.health',
      (p) =>
        p.deviceId === 'restart-me' &&
        p.deploymentId === 'dep-2' &&
        p.message?.startsWith('already handled') === true,
    );
    expect(r.current?.versionId).toBe('mv-1');

    await deployAndWait(r, 'dep-3', await platform.publishModel(models.v2, { versionId: 'mv-2b' }));
    await r.stop();
    expect((await readdir(path.join(dataDir, 'models'))).sort()).toEqual(
      [
        `${createHash('sha256').update(models.v1).digest('hex')}.onnx`,
        `${createHash('sha256').update(models.v2).digest('hex')}.onnx`,
      ].sort(),
    );

    const again = runner({ deviceId: 'restart-me', dataDir });
    await again.start();
    expect(again.current?.versionId).toBe('mv-2b');
    const hb2 = await platform.waitFor(
      'device.heartbeat',
      (p) => p.deviceId === 'restart-me' && p.modelVersionId === 'mv-2b' && p.fps > 0,
    );
    expect(hb2.previousModelVersionId).toBe('mv-1');
  });

  it('applies a duplicated deploy.apply once and picks up commands sent while it was down', async () => {
    const dataDir = path.join(root, 'devices', 'dup');
    const r = runner({ deviceId: 'dup', dataDir });
    await r.start();
    const model = await platform.publishModel(models.v1, { versionId: 'mv-1' });
    await deployAndWait(r, 'dep-dup', model);
    // Same deployment, new envelope (a platform retry): reported again, not applied again.
    await platform.deploy('dup', 'dep-dup', model);
    await platform.waitFor(
      'device.health',
      (p) =>
        p.deviceId === 'dup' &&
        p.deploymentId === 'dep-dup' &&
        p.message?.startsWith('already handled') === true,
    );
    expect(healthStates('dup', 'dep-dup').filter((s) => s === 'downloading')).toHaveLength(1);

    await r.stop();
    await platform.deploy(
      'dup',
      'dep-offline',
      await platform.publishModel(models.v2, { versionId: 'mv-2' }),
    );
    await platform.broker.publish(
      STREAMS.control,
      makeEnvelope('notify', { level: 'info', text: 'unrelated' }, { source: 'platform' }),
    );
    const back = runner({ deviceId: 'dup', dataDir });
    await back.start();
    await platform.waitFor(
      'device.health',
      (p) => p.deviceId === 'dup' && p.deploymentId === 'dep-offline' && p.state === 'healthy',
    );
    expect(back.current?.versionId).toBe('mv-2');
    expect(healthStates('dup', 'dep-dup').filter((s) => s === 'downloading')).toHaveLength(1);
  });

  it('resumes a deploy interrupted by a shutdown instead of reporting it failed or losing it', async () => {
    const dataDir = path.join(root, 'devices', 'interrupted');
    let open = false;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = http.createServer((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(models.v2.length),
      });
      if (open) {
        res.end(models.v2);
        return;
      }
      res.write(models.v2.subarray(0, 100));
      void gate.then(() => res.end(models.v2.subarray(100)));
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const model = {
        ...(await platform.publishModel(models.v2, { versionId: 'mv-2' })),
        url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/model.onnx`,
      };
      const r = runner({ deviceId: 'interrupted', dataDir });
      await r.start();
      await platform.deploy('interrupted', 'dep-int', model);
      await platform.waitFor(
        'device.health',
        (p) => p.deviceId === 'interrupted' && p.state === 'downloading',
      );
      await r.stop();
      expect(healthStates('interrupted', 'dep-int')).toEqual(['downloading']);
      open = true;
      const again = runner({ deviceId: 'interrupted', dataDir });
      await again.start();
      await platform.waitFor('device.health', (p) => p.deviceId === 'interrupted' && p.state === 'healthy');
      expect(healthStates('interrupted', 'dep-int')).toEqual([
        'downloading',
        'downloading',
        'verifying',
        'loading',
        'healthy',
      ]);
      expect(again.current?.versionId).toBe('mv-2');
    } finally {
      release();
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });

  it('buffers telemetry on disk while the broker is unreachable and flushes it in order on reconnect', async () => {
    const flaky = new FlakyBroker(platform.broker);
    const r = runner({ broker: flaky, heartbeatMs: 50 });
    await r.start();
    await platform.waitFor('device.heartbeat', (p) => p.deviceId === r.deviceId);
    flaky.down = true;
    const before = platform.messages('device.heartbeat', (p) => p.deviceId === r.deviceId).length;
    await expect.poll(() => r.telemetryBuffer.buffered, { timeout: 5000 }).toBeGreaterThanOrEqual(5);
    const buffered = r.telemetryBuffer.buffered;
    const file = await readFile(path.join(root, 'devices', r.deviceId, 'telemetry-buffer.jsonl'), 'utf8');
    expect(file.trim().split('\n').length).toBeGreaterThanOrEqual(buffered - 1);
    flaky.down = false;
    await expect.poll(() => r.telemetryBuffer.buffered, { timeout: 10_000 }).toBe(0);
    const after = platform.telemetry.filter(
      (e) => e.type === 'device.heartbeat' && (e.payload as { deviceId: string }).deviceId === r.deviceId,
    );
    expect(after.length).toBeGreaterThanOrEqual(before + buffered);
    const ts = after.map((e) => e.ts);
    expect([...ts].sort()).toEqual(ts);
    expect(r.telemetryBuffer.dropped).toBe(0);
  });

  it('samples uncertain frames under the rate cap, uploads them through signed URLs and announces feedback.sample', async () => {
    const keys: string[] = [];
    const r = runner({
      feedback: {
        perMinute: 2,
        perHour: 10,
        requestUploadUrls: async (count) =>
          Promise.all(
            Array.from({ length: count }, async () => {
              const key = `feedback/test/${keys.length}-${Math.random().toString(36).slice(2)}.jpg`;
              keys.push(key);
              return { key, url: await platform.storage.presignPut(key, 600, { contentType: 'image/jpeg' }) };
            }),
          ),
      },
    });
    await r.start();
    await deployAndWait(r, 'dep-u', await platform.publishModel(models.uncertain, { versionId: 'mv-u' }));
    const sample = await platform.waitFor('feedback.sample', (p) => p.deviceId === r.deviceId);
    await expect.poll(() => r.feedbackCounts?.capped ?? 0, { timeout: 5000 }).toBeGreaterThan(5);
    await expect
      .poll(() => platform.messages('feedback.sample', (p) => p.deviceId === r.deviceId).length, {
        timeout: 5000,
      })
      .toBe(2);
    await expect.poll(() => r.feedbackCounts?.uploaded).toBe(2);
    expect(r.feedbackCounts).toMatchObject({ low_confidence: 2, disagreement: 0, dropped: 0 });
    expect(sample).toMatchObject({ modelVersionId: 'mv-u', reason: 'low_confidence', width: 96, height: 64 });
    expect(sample.predictions[0]).toMatchObject({ className: 'helmet', classId: 0 });
    expect(sample.predictions[0]!.score).toBeCloseTo(0.4, 3);
    const stored = await platform.storage.getBuffer(sample.imageKey);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(sample.sha256);
    expect((await sharp(stored).metadata()).format).toBe('jpeg');
  });

  it('serves POST /infer, GET /healthz and GET /metrics on the device API', async () => {
    const r = runner({ httpPort: 0 });
    await r.start();
    const url = r.httpUrl!;
    const key = { 'x-device-key': r.apiKey! };
    const jpeg = await readFile(path.join(framesDir, 'f1.jpg'));
    const noModel = await fetch(`${url}/infer`, { method: 'POST', body: new Uint8Array(jpeg), headers: key });
    expect(noModel.status).toBe(503);
    expect(((await noModel.json()) as { error: { message: string } }).error.message).toMatch(/no model yet/);
    expect((await fetch(`${url}/healthz`)).status).toBe(503);

    await deployAndWait(r, 'dep-api', await platform.publishModel(models.v1, { versionId: 'mv-1' }));
    const res = await fetch(`${url}/infer`, {
      method: 'POST',
      body: new Uint8Array(jpeg),
      headers: { 'content-type': 'image/jpeg', ...key },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      modelVersionId: string;
      provider: string;
      width: number;
      detections: Array<{ className: string; score: number; box: number[] }>;
    };
    expect(body).toMatchObject({ modelVersionId: 'mv-1', provider: 'cpu', width: 96 });
    expect(body.detections).toHaveLength(1);
    expect(body.detections[0]!.className).toBe('helmet');
    expect(body.detections[0]!.score).toBeCloseTo(0.9, 3);

    const bad = await fetch(`${url}/infer`, { method: 'POST', body: 'not an image', headers: key });
    expect(bad.status).toBe(400);
    expect(
      (await fetch(`${url}/infer?conf=7`, { method: 'POST', body: new Uint8Array(jpeg), headers: key }))
        .status,
    ).toBe(400);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      ok: true,
      state: 'serving',
      modelVersionId: 'mv-1',
      provider: 'cpu',
    });

    await expect
      .poll(
        async () =>
          (
            await (
              await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${r.apiKey!}` } })
            ).text()
          ).match(/visioninapp_edge_frames_total\{device="[^"]+"\} (\d+)/)?.[1] ?? '0',
      )
      .not.toBe('0');
    const metrics = await (await fetch(`${url}/metrics`, { headers: key })).text();
    expect(metrics).toContain(
      `visioninapp_edge_model_info{version_id="mv-1",name="helmets",version="1",provider="cpu",device="${r.deviceId}"} 1`,
    );
    expect(metrics).toMatch(/visioninapp_edge_inference_seconds_bucket\{le="0.05",device="[^"]+"\} \d+/);
    expect(metrics).toMatch(/visioninapp_edge_fps\{device="[^"]+"\} [\d.]+/);
    expect(metrics).toContain('visioninapp_edge_telemetry_buffered');
  });

  it('infers frames from an ffmpeg source (testsrc video) and from frames pushed to POST /frames', async () => {
    const video = path.join(root, 'testsrc.mp4');
    await run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=128x96:rate=10:duration=2',
      '-pix_fmt',
      'yuv420p',
      video,
    ]);
    const r = runner({ source: new FfmpegSource({ input: video, maxFps: 10 }) });
    await r.start();
    await deployAndWait(r, 'dep-ff', await platform.publishModel(models.v1, { versionId: 'mv-1' }));
    await expect.poll(() => r.inference.count, { timeout: 10_000 }).toBeGreaterThan(3);
    expect(r.inference.meanTopConfidence).toBeCloseTo(0.9, 3);

    const push = runner({ source: new HttpPushSource(), httpPort: 0 });
    await push.start();
    await deployAndWait(push, 'dep-push', await platform.publishModel(models.v1, { versionId: 'mv-1' }));
    const jpeg = await readFile(path.join(framesDir, 'f2.jpg'));
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${push.httpUrl}/frames`, {
        method: 'POST',
        body: new Uint8Array(jpeg),
        headers: { 'content-type': 'image/jpeg', 'x-device-key': push.apiKey! },
      });
      expect(res.status).toBe(202);
      await expect.poll(() => push.inference.count).toBe(i + 1);
    }
    expect(
      (
        await fetch(`${push.httpUrl}/frames`, {
          method: 'POST',
          body: 'garbage',
          headers: { 'x-device-key': push.apiKey! },
        })
      ).status,
    ).toBe(400);
  });

  it('explains bad options', () => {
    expect(() => runner({ deviceId: 'bad id' })).toThrow(/device id "bad id"/);
    expect(() => runner({ providers: ['tpu'] })).toThrow(
      /execution providers must be among tensorrt, cuda, cpu/,
    );
    expect(() => runner({ uncertainBand: [0.6, 0.5] })).toThrow(/uncertain band/);
    runners.splice(0);
  });
});
