import { PlatformError } from '../../core/errors.js';
import { decodeImage, type RawImage } from '../../vision/index.js';
import { FramePacer, type Frame, type FrameSource } from './frame-source.js';

/** Options of `ImageListSource`. */
export interface ImageListSourceOptions {
  /** Loads the encoded images once (e.g. a dataset split read from storage); called on the first frame. */
  images: () => Promise<Array<{ name: string; bytes: Buffer }>>;
  maxFps?: number;
  /** Start again after the last image (default true). */
  loop?: boolean;
  /** Index of the first image, so several devices on one list do not show the same frame (default 0). */
  offset?: number;
  description?: string;
}

/** Loops over encoded images supplied by a loader, decoded once: the in-process simulated Jetsons read the demo dataset's test split this way. */
export class ImageListSource implements FrameSource {
  readonly kind = 'folder' as const;
  readonly description: string;
  readonly dropped = 0;
  private frames: Array<{ name: string; image: RawImage }> | undefined;
  private loading: Promise<Array<{ name: string; image: RawImage }>> | undefined;
  private index: number;
  private seq = 0;
  private closed = false;
  private readonly pacer: FramePacer;

  constructor(private readonly opts: ImageListSourceOptions) {
    this.description = opts.description ?? 'image list';
    this.pacer = new FramePacer(opts.maxFps);
    this.index = Math.max(0, opts.offset ?? 0);
  }

  async next(): Promise<Frame | undefined> {
    if (this.closed) return undefined;
    const frames = this.frames ?? (await this.load());
    if (this.index >= frames.length) {
      if (this.opts.loop === false) return undefined;
      this.index %= frames.length;
    }
    const f = frames[this.index++]!;
    await this.pacer.wait();
    if (this.closed) return undefined;
    return { image: f.image, capturedAt: Date.now(), seq: this.seq++, label: f.name };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pacer.cancel();
  }

  private load(): Promise<Array<{ name: string; image: RawImage }>> {
    this.loading ??= (async () => {
      const list = await this.opts.images();
      if (list.length === 0)
        throw new PlatformError(
          'not_found',
          `${this.description} has no images; give the source at least one`,
        );
      const frames = [];
      for (const img of list) frames.push({ name: img.name, image: await decodeImage(img.bytes) });
      this.frames = frames;
      return frames;
    })();
    return this.loading;
  }
}
