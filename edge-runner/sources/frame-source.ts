import type { RawImage } from '../../vision/index.js';

/** One decoded camera/folder frame, RGB with 3 channels. */
export interface Frame {
  image: RawImage;
  /** Epoch ms when the frame was read. */
  capturedAt: number;
  /** Sequence number within the source, from 0. */
  seq: number;
  /** Where it came from (file name, push request), for logs. */
  label?: string;
}

/** A pull-based frame producer: the runner asks for the next frame when it is ready for one. */
export interface FrameSource {
  readonly kind: 'folder' | 'http' | 'ffmpeg';
  /** Human-readable description for logs and heartbeats. */
  readonly description: string;
  /** Frames dropped because the consumer was slower than the source. */
  readonly dropped: number;
  /** Resolves with the next frame, or undefined once the source ended or was closed. */
  next(): Promise<Frame | undefined>;
  close(): Promise<void>;
}

/** Spaces frames at least `1000 / maxFps` ms apart (no cap when maxFps is 0 or undefined). */
export class FramePacer {
  private last = 0;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(maxFps: number | undefined) {
    this.intervalMs = maxFps !== undefined && maxFps > 0 ? 1000 / maxFps : 0;
  }

  /** Waits until the next frame may be handed out. */
  async wait(): Promise<void> {
    if (this.intervalMs > 0) {
      const due = this.last + this.intervalMs - performance.now();
      if (due > 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.timer = setTimeout(resolve, due);
        });
        this.timer = undefined;
        this.wake = undefined;
      }
    }
    this.last = performance.now();
  }

  /** Releases a pending wait (used on close). */
  cancel(): void {
    clearTimeout(this.timer);
    this.wake?.();
  }
}
