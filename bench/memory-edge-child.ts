// Child process of memory.bench.ts: one edge runner serving the built-in detector, reporting its own memory at each stage.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deployBuiltin, startBenchRunner } from './scene-source.js';
import { buildBuiltinDetector } from '../edge-runner/models.fixtures.js';
import { EmbeddedPlatform } from '../edge-runner/platform.fixtures.js';
import { renderScene, type RawImage } from '../vision/index.js';

const SIZE = Number(process.env.MEMORY_EDGE_SIZE ?? 320);

const mb = (bytes: number) => bytes / 2 ** 20;
const stage = () => {
  const m = process.memoryUsage();
  return {
    rss: mb(m.rss),
    heapUsed: mb(m.heapUsed),
    external: mb(m.external),
    arrayBuffers: mb(m.arrayBuffers),
  };
};

const root = await mkdtemp(path.join(os.tmpdir(), 'memory-edge-'));
const out: Record<string, unknown> = { afterImports: stage() };
const platform = new EmbeddedPlatform(path.join(root, 'storage'));
await platform.start();
const built = await buildBuiltinDetector(SIZE, 0.5, root);
// two 720p frames in rotation: a camera source holds about that much
const frames: RawImage[] = Array.from({ length: 2 }, (_, i) => {
  const s = renderScene(1000 + i, { width: 1280, height: 720 });
  return { data: s.data, width: s.width, height: s.height, channels: 3 };
});
const runner = await startBenchRunner(platform, root, 'memory-edge', frames);
out.runnerStarted = stage();
await deployBuiltin(platform, 'memory-edge', built.bytes, SIZE, 120_000);
out.modelLoaded = stage();
await new Promise((r) => setTimeout(r, Number(process.env.MEMORY_EDGE_SECONDS ?? 5) * 1000));
out.serving = stage();
out.frames = runner.inference.count;
// peak resident memory of this process so far (kilobytes), the figure the 250 MB target is about
out.peakRss = process.resourceUsage().maxRSS / 1024;
out.modelBytes = built.bytes.length;
await runner.stop();
await platform.close();
await rm(root, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(out)}\n`);
