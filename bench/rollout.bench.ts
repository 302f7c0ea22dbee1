import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { pathToFileURL } from 'node:url';
import { EdgeRunner } from '../edge-runner/edge-runner.js';
import { HttpPushSource } from '../edge-runner/sources/index.js';
import { buildTestDetector } from '../edge-runner/models.fixtures.js';
import { EmbeddedPlatform } from '../edge-runner/platform.fixtures.js';
import { silentLogger } from '../core/log.js';
import type { BenchReport } from './run-all.js';

const DEVICES = Number(process.env.ROLLOUT_BENCH_DEVICES ?? 50);

/** Plain download + sha256 of one URL into a file: the floor a device's deploy cannot beat. */
async function plainDownload(url: string, file: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as ReadableStream<Uint8Array>), tap, createWriteStream(file));
  return hash.digest('hex');
}

/** Rolls a 4 MB model out to 50 in-process edge runners and compares with 50 plain downloads + sha256 of the same bytes. */
export async function run(): Promise<BenchReport> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'rollout-bench-'));
  const platform = new EmbeddedPlatform(path.join(root, 'storage'));
  await platform.start();
  const runners: EdgeRunner[] = [];
  try {
    const built = await buildTestDetector(
      { detections: [{ cx: 32, cy: 32, w: 20, h: 20, cls: 0, score: 0.9 }], padFloats: 1_000_000 },
      root,
    );
    const model = await platform.publishModel(built.bytes, { versionId: 'mv-bench' });

    const plainDir = path.join(root, 'plain');
    await mkdir(plainDir);
    const plainRound = async (): Promise<number> => {
      const p0 = performance.now();
      const hashes = await Promise.all(
        Array.from({ length: DEVICES }, (_, i) => plainDownload(model.url, path.join(plainDir, `${i}.onnx`))),
      );
      if (hashes.some((h) => h !== model.sha256)) throw new Error('plain download hash mismatch');
      return performance.now() - p0;
    };
    const plainFirst = await plainRound();

    for (let i = 0; i < DEVICES; i++) {
      runners.push(
        new EdgeRunner({
          deviceId: `bench-${i}`,
          tags: ['bench'],
          broker: platform.broker,
          dataDir: path.join(root, 'devices', `bench-${i}`),
          source: new HttpPushSource(),
          log: silentLogger(),
          heartbeatMs: 60_000,
          threads: 1,
          hardware: 'bench',
        }),
      );
    }
    await Promise.all(runners.map((r) => r.start()));

    const sentAt = new Map<string, number>();
    const r0 = performance.now();
    for (const r of runners) {
      sentAt.set(r.deviceId, performance.now());
      await platform.deploy(r.deviceId, `dep-${r.deviceId}`, model, 'ro-bench');
    }
    const healthy = new Map<string, number>();
    await platform.waitFor(
      'device.health',
      () => {
        for (const h of platform.messages(
          'device.health',
          (p) => p.state === 'healthy' || p.state === 'failed',
        )) {
          if (h.state === 'failed') throw new Error(`device ${h.deviceId} failed: ${h.message}`);
          if (!healthy.has(h.deviceId)) healthy.set(h.deviceId, performance.now());
        }
        return healthy.size >= DEVICES;
      },
      120_000,
    );
    const rolloutMs = performance.now() - r0;
    // The baseline runs before and after the rollout; the faster round is the stricter comparison.
    const plainMs = Math.min(plainFirst, await plainRound());
    const perDevice = [...healthy.entries()].map(([id, t]) => t - sentAt.get(id)!).sort((a, b) => a - b);
    const ratio = rolloutMs / plainMs;
    return {
      name: 'rollout',
      results: [
        {
          label: `rollout of a ${(built.bytes.length / 1e6).toFixed(1)} MB model to ${DEVICES} edge runners until all healthy`,
          value: rolloutMs,
          unit: 'ms',
        },
        {
          label: `plain download + sha256 of the same bytes ${DEVICES} times (concurrent, faster of two rounds)`,
          value: plainMs,
          unit: 'ms',
        },
        {
          label: 'per-device time to healthy, median',
          value: perDevice[Math.floor(perDevice.length / 2)]!,
          unit: 'ms',
        },
        { label: 'per-device time to healthy, max', value: perDevice[perDevice.length - 1]!, unit: 'ms' },
      ],
      ratios: [{ label: 'rollout / plain download + sha256', value: ratio, target: '<= 3' }],
      notes: [
        'one process: MemoryBroker, LocalStorage behind express on 127.0.0.1, onnxruntime CPU with 1 intra-op thread per device; includes download, verify, session load, warm-up and self-test, switch and the healthy report',
      ],
    };
  } finally {
    await Promise.all(runners.map((r) => r.stop()));
    await platform.close();
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const report = await run();
  console.log(JSON.stringify(report, null, 2));
}
