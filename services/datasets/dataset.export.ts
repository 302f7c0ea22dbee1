import { createWriteStream } from 'node:fs';
import { mkdir, readdir, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { z } from 'zod';
import type { CallContext } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import { buildCocoJson, formatYoloDataYaml, formatYoloLabels, SPLITS } from '../../vision/formats/index.js';
import type { Storage } from '../infra/storage/port.js';
import type { DatasetRow, VersionImage, VersionRow } from './dataset.repository.js';
import type { ExportResult } from './model.js';
import type { exportInputSchema } from './schemas.js';

/**
 * Writes a version as YOLO or COCO to a zip in storage (`exports/<project>/...`, with a download
 * link) or to `target`, a new folder or zip file already checked against the export roots (files
 * 0600, folders 0700).
 */
export class DatasetExporter {
  constructor(
    private readonly storage: Storage,
    private readonly now: () => number,
  ) {}

  async write(
    ctx: CallContext,
    req: z.output<typeof exportInputSchema>,
    target: string | undefined,
    dataset: DatasetRow,
    version: VersionRow,
    images: VersionImage[],
  ): Promise<ExportResult> {
    const classNames = JSON.parse(version.class_names) as string[];
    const splits = SPLITS.filter((s) => images.some((i) => i.split === s));
    const entries: Array<{ path: string; data: () => Promise<Buffer>; compress: boolean }> = [];
    for (const img of images) {
      const imagePath = `images/${img.split}/${img.sha256}${path.posix.extname(img.imageKey)}`;
      entries.push({ path: imagePath, data: () => this.storage.getBuffer(img.imageKey), compress: false });
      if (req.format === 'yolo')
        entries.push({
          path: `labels/${img.split}/${img.sha256}.txt`,
          data: async () => Buffer.from(formatYoloLabels(img.boxes)),
          compress: true,
        });
    }
    if (req.format === 'yolo')
      entries.push({
        path: 'data.yaml',
        data: async () => Buffer.from(formatYoloDataYaml(classNames, splits)),
        compress: true,
      });
    else {
      const doc = buildCocoJson(
        classNames,
        images.map((img) => ({
          fileName: `images/${img.split}/${img.sha256}${path.posix.extname(img.imageKey)}`,
          width: img.width,
          height: img.height,
          boxes: img.boxes,
        })),
      );
      entries.push({
        path: 'annotations.json',
        data: async () => Buffer.from(JSON.stringify(doc)),
        compress: true,
      });
    }
    if (req.to.kind === 'folder') {
      const root = target!;
      const existing = await readdir(root).catch(() => []);
      if (existing.length > 0)
        throw new PlatformError(
          'conflict',
          `export folder "${req.to.path}" is not empty; choose a new or empty folder`,
        );
      await mkdir(root, { recursive: true, mode: 0o700 });
      // checked again once created: a link put in its place meanwhile is refused
      if ((await realpath(root)) !== root)
        throw new PlatformError(
          'conflict',
          `export folder "${req.to.path}" changed while it was created; retry with a new folder`,
        );
      for (const e of entries) {
        const file = path.join(root, ...e.path.split('/'));
        await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
        await writeFile(file, await e.data(), { flag: 'wx', mode: 0o600 });
      }
      return { format: req.format, images: images.length, location: root, kind: 'folder' };
    }
    const zip = new yazl.ZipFile();
    // entries are read only when the zip writer reaches them, so one image at a time is in memory
    for (const e of entries) {
      zip.addReadStreamLazy(e.path, { compress: e.compress }, (cb) => {
        e.data().then(
          (buf) => cb(null, Readable.from([buf])),
          (err: unknown) => cb(err, Readable.from([])),
        );
      });
    }
    zip.end();
    if (target !== undefined) {
      const file = target;
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      if ((await realpath(path.dirname(file))) !== path.dirname(file))
        throw new PlatformError(
          'conflict',
          `the folder of "${req.to.path}" changed while it was created; retry`,
        );
      // 'wx' never follows or replaces an existing file or link
      await pipeline(zip.outputStream, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
      return { format: req.format, images: images.length, location: file, kind: 'zip-file' };
    }
    const key = `exports/${ctx.projectId}/${dataset.name}-v${version.version}-${req.format}-${this.now()}.zip`;
    const body = new PassThrough();
    zip.outputStream.pipe(body);
    const put = await this.storage.put(key, body, { contentType: 'application/zip' });
    const url = await this.storage.presignGet(key, 3600);
    return {
      format: req.format,
      images: images.length,
      location: key,
      kind: 'zip-storage',
      url,
      bytes: put.size,
      sha256: put.sha256,
    };
  }
}
