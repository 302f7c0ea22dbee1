import type { Frame, FrameSource } from '../edge-runner/sources/index.js';
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
