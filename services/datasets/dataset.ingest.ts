import { createHash } from 'node:crypto';
import type { CallContext } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import {
  formatYoloLabels,
  normalizeBoxes,
  parseCoco,
  parseVoc,
  parseYolo,
  type DatasetFormat,
  type FormatIssue,
  type ParsedDataset,
  type Split,
} from '../../vision/formats/index.js';
import type { Storage } from '../infra/storage/port.js';
import type { VersionImage } from './dataset.repository.js';
import type { ImportPhase } from './events.js';
import { probeImage, renderThumbnail } from './images.js';
import type { DatasetLimits } from './model.js';
import { projectStoragePrefix } from './roots.js';
import type { OpenedSource } from './sources.js';

/** The file work of a new version: images read, checked and stored content-addressed, label files and thumbnails written. */
export class DatasetIngest {
  constructor(
    private readonly storage: Storage,
    private readonly limits: DatasetLimits,
    private readonly log: Logger,
  ) {}

  /** Reads, checks and stores each image; returns the usable ones with their source split. */
  async ingestImages(
    ctx: CallContext,
    parsed: ParsedDataset,
    source: OpenedSource,
    issues: FormatIssue[],
    progress: (phase: ImportPhase, done: number, total: number) => void,
  ): Promise<Array<{ image: Omit<VersionImage, 'split'>; sourceSplit?: Split; path: string }>> {
    const out: Array<{ image: Omit<VersionImage, 'split'>; sourceSplit?: Split; path: string }> = [];
    let done = 0;
    const total = parsed.images.length;
    progress('images', 0, total);
    await mapLimit(parsed.images, this.limits.concurrency, async (src) => {
      if (ctx.signal?.aborted)
        throw new PlatformError('unavailable', 'import cancelled; nothing was imported');
      try {
        let bytes: Buffer;
        try {
          bytes = await source.readBuffer(src.image);
        } catch (err) {
          issues.push({
            kind: 'unreadable_image',
            severity: 'error',
            file: src.image,
            message: `cannot read: ${(err as Error).message}`,
          });
          return;
        }
        const probe = await probeImage(bytes, this.limits.maxImagePixels);
        if (!probe.ok) {
          issues.push({ kind: probe.kind, severity: 'error', file: src.image, message: probe.message });
          return;
        }
        const norm = normalizeBoxes(src, probe.width, probe.height);
        issues.push(...norm.issues);
        const stored = await this.storeImage(ctx, bytes, probe.ext);
        out.push({
          path: src.image,
          sourceSplit: src.split,
          image: {
            ...stored,
            width: probe.width,
            height: probe.height,
            boxes: norm.boxes,
            labelKey: '',
            labelSha256: '',
            labelBytes: 0,
            thumbnailKey: null,
            sourcePath: src.image,
          },
        });
      } finally {
        progress('images', ++done, total);
      }
    });
    return out;
  }

  /** Stores bytes at `projects/<project>/images/<sha256>.<ext>` unless that object already exists (one project never reads another's). */
  async storeImage(
    ctx: CallContext,
    bytes: Buffer,
    ext: string,
  ): Promise<{ sha256: string; imageKey: string; imageBytes: number }> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const imageKey = `${projectStoragePrefix(ctx.projectId)}images/${sha256}.${ext}`;
    const head = await this.storage.head(imageKey);
    if (head === undefined || head.size !== bytes.length)
      await this.storage.put(imageKey, bytes, { contentType: ext === 'jpg' ? 'image/jpeg' : `image/${ext}` });
    return { sha256, imageKey, imageBytes: bytes.length };
  }

  /** Stores each image's YOLO label text content-addressed at `projects/<project>/labels/<sha256>.txt` and fills in its key. */
  async storeLabels(ctx: CallContext, images: VersionImage[]): Promise<void> {
    const stored = new Map<string, Promise<void>>();
    await mapLimit(images, this.limits.concurrency, async (img) => {
      const text = Buffer.from(formatYoloLabels(img.boxes));
      const sha = createHash('sha256').update(text).digest('hex');
      const key = `${projectStoragePrefix(ctx.projectId)}labels/${sha}.txt`;
      let pending = stored.get(key);
      if (pending === undefined) {
        pending = (async () => {
          if ((await this.storage.head(key)) === undefined)
            await this.storage.put(key, text, { contentType: 'text/plain' });
        })();
        stored.set(key, pending);
      }
      await pending;
      img.labelKey = key;
      img.labelSha256 = sha;
      img.labelBytes = text.length;
    });
  }

  /** Gives the first images by content hash a thumbnail with boxes drawn, up to the configured count. */
  async addThumbnails(
    ctx: CallContext,
    images: VersionImage[],
    classNames: string[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<void> {
    const have = images.filter((i) => i.thumbnailKey !== null).length;
    const want = [...images]
      .filter((i) => i.thumbnailKey === null)
      .sort((a, b) => a.sha256.localeCompare(b.sha256))
      .slice(0, Math.max(0, this.limits.thumbnails - have));
    let done = 0;
    onProgress?.(0, want.length);
    await mapLimit(want, this.limits.concurrency, async (img) => {
      try {
        const thumb = await renderThumbnail(
          await this.storage.getBuffer(img.imageKey),
          img.width,
          img.height,
          img.boxes,
          classNames,
        );
        const sha = createHash('sha256').update(thumb).digest('hex');
        const key = `${projectStoragePrefix(ctx.projectId)}thumbnails/${sha}.jpg`;
        await this.storage.put(key, thumb, { contentType: 'image/jpeg' });
        img.thumbnailKey = key;
      } catch (err) {
        this.log.warn(
          { image: img.imageKey, err: (err as Error).message },
          'thumbnail failed; the version is kept without it',
        );
      }
      onProgress?.(++done, want.length);
    });
  }
}

/** Parses an opened source in its format. */
export function parseSource(
  format: DatasetFormat,
  source: OpenedSource,
  classNames?: string[],
): Promise<ParsedDataset> {
  switch (format) {
    case 'yolo':
      return parseYolo(source);
    case 'coco':
      return parseCoco(source);
    case 'voc':
      return parseVoc(source, { classNames });
  }
}

/** Keeps the first image (by source path) of each content hash and reports the others as duplicates. */
export function dedupe<T extends { image: { sha256: string }; path: string }>(
  items: T[],
  issues: FormatIssue[],
): T[] {
  const first = new Map<string, T>();
  for (const item of [...items].sort((a, b) => a.path.localeCompare(b.path))) {
    const prior = first.get(item.image.sha256);
    if (prior === undefined) first.set(item.image.sha256, item);
    else
      issues.push({
        kind: 'duplicate_image',
        severity: 'error',
        file: item.path,
        message: `same content (sha256 ${item.image.sha256.slice(0, 12)}…) as ${prior.path}; kept that one`,
      });
  }
  return [...first.values()];
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
