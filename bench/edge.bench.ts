import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EdgeRunner } from '../edge-runner/edge-runner.js';
import { percentile } from '../edge-runner/stats.js';
import { buildBuiltinDetector } from '../edge-runner/models.fixtures.js';
import { EmbeddedPlatform } from '../edge-runner/platform.fixtures.js';
import { deployBuiltin, startBenchRunner } from './scene-source.js';
import { loadDetector, renderScene, type RawImage } from '../vision/index.js';
import type { BenchReport } from './run-all.js';

const SECONDS = Number(process.env.EDGE_BENCH_SECONDS ?? 8);
const SIZE = 320;

/** Per-device throughput and latency of an EdgeRunner serving the built-in detector at 320 on one onnxruntime thread, vs the bare detector. */
export async function run(): Promise<BenchReport> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'edge-bench-'));
  const platform = new EmbeddedPlatform(path.join(root, 'storage'));
  await platform.start();
  let runner: EdgeRunner | undefined;
  try {
    const built = await buildBuiltinDetector(SIZE, 0.5, root);
    const frames: RawImage[] = Array.from({ length: 16 }, (_, i) => {
      const s = renderScene(1000 + i, { width: 640, height: 480 });
      return { data: s.data, width: s.width, height: s.height, channels: 3 };
    });

    // Bare detector on the same frames, before and after the runner: the ceiling the runner's loop is compared with.
    const bare = await loadDetector(built.path, { threads: 1 });
    for (let i = 0; i < 10; i++) await bare.detect(frames[i % frames.length]!);
    const bareLat: number[] = [];
    let bareMs = 0;
    const bareRound = async (): Promise<void> => {
      const b0 = performance.now();
      while (performance.now() - b0 < (SECONDS * 1000) / 2) {
        const t = performance.now();
        await bare.detect(frames[bareLat.length % frames.length]!);
        bareLat.push(performance.now() - t);
      }
      bareMs += performance.now() - b0;
    };
    await bareRound();

    runner = await startBenchRunner(platform, root, 'bench-edge', frames);
    await deployBuiltin(platform, 'bench-edge', built.bytes, SIZE, 60_000);
    // Skip the first second (warm-up), then read the runner's own rolling figures over the window.
    await new Promise((r) => setTimeout(r, 1000));
    const framesBefore = runner.inference.count;
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const s = runner.inference;
    const elapsed = performance.now() - w0;
    const fps = ((s.count - framesBefore) * 1000) / elapsed;
    const deviceHb = platform.messages('device.heartbeat', (p) => p.deviceId === 'bench-edge').at(-1)!;
    await runner.stop();
    runner = undefined;
    await bareRound();
    await bare.dispose();
    const bareFps = (bareLat.length * 1000) / bareMs;
    bareLat.sort((a, b) => a - b);
    return {
      name: 'edge',
      results: [
        {
          label: `edge runner throughput, built-in detector (width 0.5) at ${SIZE}, 1 onnxruntime thread, 640x480 frames`,
          value: fps,
          unit: 'frames/s',
        },
        {
          label: 'edge runner latency p50 (letterbox + model + decode + NMS)',
          value: s.latencyP50Ms,
          unit: 'ms',
        },
        { label: 'edge runner latency p95', value: s.latencyP95Ms, unit: 'ms' },
        { label: 'bare detector throughput, same model and frames', value: bareFps, unit: 'frames/s' },
        { label: 'bare detector latency p50', value: percentile(bareLat, 0.5), unit: 'ms' },
        { label: 'bare detector latency p95', value: percentile(bareLat, 0.95), unit: 'ms' },
        { label: 'fps in the device heartbeat (30 s rolling window)', value: deviceHb.fps, unit: 'frames/s' },
      ],
      ratios: [{ label: 'edge runner fps / bare detector fps', value: fps / bareFps, target: '>= 0.9' }],
      notes: [
        `runner measured over ${SECONDS} s after a 1 s warm-up; bare detector over ${SECONDS / 2} s before and ${SECONDS / 2} s after; ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown cpu'}, load average ${os.loadavg()[0]!.toFixed(1)} at the end`,
      ],
    };
  } finally {
    await runner?.stop();
    await platform.close();
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const report = await run();
  console.log(JSON.stringify(report, null, 2));
}
