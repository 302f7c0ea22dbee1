import type { Frame, FrameSource } from '../edge-runner/sources/index.js';
import path from 'node:path';
import { silentLogger } from '../core/log.js';
import { EdgeRunner } from '../edge-runner/edge-runner.js';
import type { EmbeddedPlatform } from '../edge-runner/platform.fixtures.js';
import type { RawImage } from '../vision/index.js';

/** Cycles pre-rendered frames as fast as they are pulled, so the figure is the device's inference throughput. */
export class SceneSource implements FrameSource {
  readonly kind = 'folder' as const;
  readonly description = 'synthetic scenes';
  readonly dropped = 0;
  private i = 0;
  private closed = false;
  constructor(private readonly frames: RawImage[]) {}
  async next(): Promise<Frame | undefined> {
    if (this.closed) return undefined;
    const image = this.frames[this.i % this.frames.length]!;
    return { image, capturedAt: Date.now(), seq: this.i++ };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Starts an edge runner (one onnxruntime thread, heartbeat every second) pulling `frames`, as the benchmarks measure it. */
export async function startBenchRunner(
  platform: EmbeddedPlatform,
  root: string,
  deviceId: string,
  frames: RawImage[],
): Promise<EdgeRunner> {
  const runner = new EdgeRunner({
    deviceId,
    tags: ['bench'],
    broker: platform.broker,
    dataDir: path.join(root, 'device'),
    source: new SceneSource(frames),
    log: silentLogger(),
    threads: 1,
    heartbeatMs: 1000,
    hardware: 'bench',
  });
  await runner.start();
  return runner;
}

/** Publishes the built-in detector, deploys it to `deviceId` and waits until the device reports it healthy. */
export async function deployBuiltin(
  platform: EmbeddedPlatform,
  deviceId: string,
  bytes: Buffer,
  inputSize: number,
  timeoutMs: number,
): Promise<void> {
  const model = await platform.publishModel(bytes, {
    versionId: 'mv-builtin',
    classNames: ['helmet', 'head', 'vest'],
    inputSize,
  });
  await platform.deploy(deviceId, `dep-${deviceId}`, model);
  await platform.waitFor('device.health', (p) => p.deviceId === deviceId && p.state === 'healthy', timeoutMs);
}
