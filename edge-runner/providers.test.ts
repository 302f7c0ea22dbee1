import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformError } from '../core/errors.js';
import type { Detector } from '../vision/index.js';
import { edgeOptionsFromEnv, edgeRunnerOptionsSchema } from './command.js';
import {
  detectTensorrtVersion,
  loadWithFallback,
  providerChain,
  providerListSchema,
  tensorrtCacheDir,
} from './providers.js';
import { readTemperature } from './system.js';
import { buildTestDetector } from './models.fixtures.js';

let dir: string;
let modelPath: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edge-providers-'));
  modelPath = (
    await buildTestDetector({ detections: [{ cx: 32, cy: 32, w: 10, h: 10, cls: 0, score: 0.7 }] }, dir)
  ).path;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(loadWithFallback.name, () => {
  it('ends on cpu when tensorrt cannot create a session, and says why', async () => {
    const trtDir = path.join(dir, 'trt');
    const loaded = await loadWithFallback(modelPath, ['tensorrt', 'cpu'], { tensorrt: { dir: trtDir } });
    expect(loaded.provider).toBe('cpu');
    expect(loaded.failures.map((f) => f.provider)).toEqual(['tensorrt']);
    expect(loaded.failures[0]!.error).toMatch(/TensorRT|shared library/i);
    expect(
      await loaded.detector.detect({ data: new Uint8Array(64 * 64 * 3), width: 64, height: 64, channels: 3 }),
    ).toHaveLength(1);
    await loaded.detector.dispose();
    // The engine-cache environment is restored after the attempt.
    expect(process.env.ORT_TENSORRT_CACHE_PATH).toBeUndefined();
  });

  it('passes each shorter chain in order and does not retry errors about the model itself', async () => {
    const chains: unknown[] = [];
    const fake = (async (_m: unknown, o: { providers?: unknown[] }) => {
      chains.push(o.providers);
      if (chains.length < 3)
        throw new PlatformError('invalid_input', 'onnxruntime cannot load the model: no GPU');
      return { dispose: async () => undefined } as unknown as Detector;
    }) as never;
    const ok = await loadWithFallback('m.onnx', ['tensorrt', 'cuda', 'cpu'], {
      loader: fake,
      tensorrt: { dir: '/cache/x' },
    });
    expect(ok.provider).toBe('cpu');
    expect(chains).toEqual([
      [
        {
          name: 'tensorrt',
          deviceId: 0,
          trt_engine_cache_enable: true,
          trt_engine_cache_path: '/cache/x',
          trt_fp16_enable: true,
        },
        { name: 'cuda', deviceId: 0 },
        'cpu',
      ],
      [{ name: 'cuda', deviceId: 0 }, 'cpu'],
      ['cpu'],
    ]);
    let calls = 0;
    const layoutError = (async () => {
      calls++;
      throw new PlatformError('invalid_input', 'the model outputs match no known detector layout');
    }) as never;
    await expect(loadWithFallback('m.onnx', ['cuda', 'cpu'], { loader: layoutError })).rejects.toThrow(
      /no known detector layout/,
    );
    expect(calls).toBe(1);
    const never = (async () => {
      throw new PlatformError('invalid_input', 'onnxruntime cannot load the model: broken');
    }) as never;
    await expect(loadWithFallback('m.onnx', ['cuda', 'cpu'], { loader: never })).rejects.toThrow(
      /no execution provider could load the model \(cuda: .*; cpu: .*\)/,
    );
  });

  it('names engine caches per model, device and TensorRT version', () => {
    const a = tensorrtCacheDir('/d/trt', 'ab'.repeat(32), 'NVIDIA Jetson Orin Nano Developer Kit', '10.3.0');
    expect(a).toBe(`/d/trt/${'ab'.repeat(8)}-nvidia-jetson-orin-nano-developer-kit-trt10.3.0`);
    expect(tensorrtCacheDir('/d/trt', 'ab'.repeat(32), 'x', '8.6.2')).not.toBe(
      tensorrtCacheDir('/d/trt', 'ab'.repeat(32), 'x', '10.3.0'),
    );
    expect(providerChain(['cuda', 'cpu'])).toEqual([{ name: 'cuda', deviceId: 0 }, 'cpu']);
    expect(providerListSchema.parse(' TensorRT, cpu ')).toEqual(['tensorrt', 'cpu']);
  });

  it('reads the TensorRT version from libnvinfer and the hottest thermal zone', async () => {
    const lib = path.join(dir, 'lib');
    await mkdir(lib);
    await writeFile(path.join(lib, 'libnvinfer.so.10.3.0'), '');
    await writeFile(path.join(lib, 'libnvinfer.so.8.6.2'), '');
    expect(detectTensorrtVersion([path.join(dir, 'nope'), lib])).toBe('10.3.0');
    expect(detectTensorrtVersion([path.join(dir, 'nope')])).toBe('none');
    const thermal = path.join(dir, 'thermal');
    for (const [zone, milli] of [
      ['thermal_zone0', '41500'],
      ['thermal_zone1', '55250'],
      ['thermal_zone2', '-273000'],
    ] as const) {
      await mkdir(path.join(thermal, zone), { recursive: true });
      await writeFile(path.join(thermal, zone, 'temp'), `${milli}\n`);
    }
    expect(await readTemperature([path.join(dir, 'none'), thermal])).toBe(55.3);
    expect(await readTemperature([path.join(dir, 'none')])).toBeNull();
  });
});

describe('edge-runner command options', () => {
  it('parses flags and environment variables with defaults', () => {
    const env = edgeOptionsFromEnv({
      VISIONINAPP_EDGE_DEVICE_ID: 'jetson-01',
      VISIONINAPP_EDGE_TAGS: 'line-3, site-a',
      RABBITMQ_STREAM_URL: 'rabbitmq-stream://u:p@platform:5552/',
      VISIONINAPP_EDGE_PROVIDERS: 'tensorrt,cuda,cpu',
      VISIONINAPP_EDGE_FPS: '15',
    });
    const o = edgeRunnerOptionsSchema.parse({ ...env, source: 'ffmpeg:/dev/video0' });
    expect(o).toMatchObject({
      deviceId: 'jetson-01',
      tags: ['line-3', 'site-a'],
      providers: ['tensorrt', 'cuda', 'cpu'],
      fps: 15,
      httpPort: 8090,
      uncertainBand: [0.25, 0.5],
      feedbackPerMinute: 2,
    });
    const bad = edgeRunnerOptionsSchema.safeParse({
      deviceId: 'x',
      brokerUrl: 'amqp://h',
      source: 'http',
      uncertainBand: '0.6,0.2',
      providers: 'gpu',
    });
    expect(bad.success).toBe(false);
    const text = bad.error!.issues.map((i) => i.message).join('\n');
    expect(text).toMatch(/rabbitmq-stream:\/\//);
    expect(text).toMatch(/low end must be below/);
    expect(text).toMatch(/unknown execution provider "gpu"/);
  });
});
