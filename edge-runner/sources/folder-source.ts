import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PlatformError } from '../../core/errors.js';
import { decodeImage, type RawImage } from '../../vision/index.js';
import { FramePacer, type Frame, type FrameSource } from './frame-source.js';

/** Options of `FolderSource`. */
export interface FolderSourceOptions {
  dir: string;
  /** Frames per second cap (0 = as fast as the consumer pulls). */
  maxFps?: number;
  /** Start again at the first image after the last one (default true). */
  loop?: boolean;
  /** Keep decoded frames in memory up to this many bytes (default 64 MiB) so a loop does not decode every pass. */
  cacheBytes?: number;
}

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff']);

/** Loops over the images of a folder (recursively, sorted by path), decoded with sharp to raw RGB. */
export class FolderSource implements FrameSource {
  readonly kind = 'folder' as const;
  readonly description: string;
  readonly dropped = 0;
  private files: string[] | undefined;
  private index = 0;
  private seq = 0;
  private closed = false;
  private readonly pacer: FramePacer;
  private readonly cache = new Map<string, RawImage>();
  private cachedBytes = 0;

  constructor(private readonly opts: FolderSourceOptions) {
    this.description = `folder ${opts.dir}`;
    this.pacer = new FramePacer(opts.maxFps);
  }

  async next(): Promise<Frame | undefined> {
    if (this.closed) return undefined;
    const files = await this.list();
    if (this.index >= files.length) {
      if (this.opts.loop === false) return undefined;
      this.index = 0;
    }
    const file = files[this.index++]!;
    await this.pacer.wait();
    if (this.closed) return undefined;
    const image = await this.decode(file);
    return { image, capturedAt: Date.now(), seq: this.seq++, label: path.relative(this.opts.dir, file) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pacer.cancel();
    this.cache.clear();
  }

  private async list(): Promise<string[]> {
    if (this.files) return this.files;
    let entries: string[];
    try {
      entries = (await readdir(this.opts.dir, { recursive: true })).map(String);
    } catch (err) {
      throw new PlatformError(
        'not_found',
        `cannot read frame folder "${this.opts.dir}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the --source path`,
      );
    }
    const files = entries
      .filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase()))
      .sort()
      .map((f) => path.join(this.opts.dir, f));
    if (files.length === 0)
      throw new PlatformError(
        'not_found',
        `no images (jpg, png, webp, bmp, tiff) in frame folder "${this.opts.dir}"; put some there or use another source`,
      );
    this.files = files;
    return files;
  }

  private async decode(file: string): Promise<RawImage> {
    const hit = this.cache.get(file);
    if (hit) return hit;
    const image = await decodeImage(await readFile(file));
    const limit = this.opts.cacheBytes ?? 64 * 1024 * 1024;
    if (this.cachedBytes + image.data.byteLength <= limit) {
      this.cache.set(file, image);
      this.cachedBytes += image.data.byteLength;
    }
    return image;
  }
}
