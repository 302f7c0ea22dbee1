import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { roleAtLeast, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Storage } from '../infra/storage/port.js';
import { DEFAULT_ZIP_LIMITS, extractZipSafely, nameProblem, type ZipLimits } from './zip.js';

/** Bounds of one browser upload. */
export interface UploadLimits {
  /** Most bytes of all files together. */
  maxBytes: number;
  /** Most files (a folder upload). */
  maxFiles: number;
  /** Largest chunk one request may carry. */
  chunkBytes: number;
  /** An upload not finished within this time is removed. */
  ttlMs: number;
}

/** Defaults: 4 GiB, 50,000 files, 4 MiB chunks, kept for a day. */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {
  maxBytes: 4 * 1024 ** 3,
  maxFiles: 50_000,
  chunkBytes: 4 * 1024 ** 2,
  ttlMs: 24 * 3_600_000,
};

const UPLOAD_ID = /^upl_[a-z0-9]{8,40}$/;

/** What a browser declares before sending bytes: every file's path (relative) and size. */
export const uploadStartSchema = z.object({
  files: z
    .array(
      z.object({
        path: z
          .string()
          .min(1)
          .max(1000)
          .describe('path inside the upload, e.g. images/train/a.jpg or set.zip'),
        size: z.number().int().min(0).describe('size in bytes'),
      }),
    )
    .min(1)
    .describe('the files of the upload: one .zip, or the files of a folder'),
});
/** What a browser declares before sending bytes. */
export type UploadStart = z.infer<typeof uploadStartSchema>;

const manifestSchema = z.object({
  id: z.string(),
  projectId: z.string(),
  userId: z.string(),
  createdAt: z.number(),
  kind: z.enum(['zip', 'folder']),
  files: z.array(z.object({ path: z.string(), size: z.number() })),
});
type Manifest = z.infer<typeof manifestSchema>;

/** Where an upload stands: bytes received per file, so a client resumes from there. */
export interface UploadStatus {
  id: string;
  kind: 'zip' | 'folder';
  files: Array<{ path: string; size: number; received: number }>;
  bytes: number;
  received: number;
  complete: boolean;
  /** Largest chunk to send. */
  chunkBytes: number;
  expiresAt: number;
}

/** A finished upload: the storage prefix `import_dataset` reads (`storage:uploads/<id>`). */
export interface FinishedUpload {
  id: string;
  source: string;
  files: number;
  bytes: number;
}

/**
 * Browser uploads of a dataset (a zip or a folder), in chunks that may be resent after an error,
 * staged on disk per project (folders 0700, files 0600) and, once complete, copied into the
 * project's storage area, where the approved `import_dataset` tool reads them. Staged bytes are no
 * project state: nothing joins a dataset except through that tool.
 */
export class DatasetUploads {
  private readonly dir: string;
  private readonly storage: Storage;
  private readonly limits: UploadLimits;
  private readonly zipLimits: ZipLimits;
  private readonly now: () => number;

  constructor(deps: {
    /** Staging folder (DATA_DIR/uploads). */
    dir: string;
    storage: Storage;
    limits?: Partial<UploadLimits>;
    zipLimits?: ZipLimits;
    now?: () => number;
  }) {
    this.dir = path.resolve(deps.dir);
    this.storage = deps.storage;
    this.limits = { ...DEFAULT_UPLOAD_LIMITS, ...deps.limits };
    this.zipLimits = deps.zipLimits ?? DEFAULT_ZIP_LIMITS;
    this.now = deps.now ?? Date.now;
  }

  /** Opens an upload for the declared files after checking their paths and sizes. */
  async begin(ctx: CallContext, input: UploadStart): Promise<UploadStatus> {
    requireWriter(ctx);
    const parsed = uploadStartSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError('invalid_input', `invalid upload: ${describeZodError(parsed.error)}`);
    const files = parsed.data.files;
    if (files.length > this.limits.maxFiles)
      throw new PlatformError(
        'invalid_input',
        `${files.length} files is more than the ${this.limits.maxFiles} one upload may hold; upload a zip instead`,
      );
    const seen = new Set<string>();
    for (const f of files) {
      const problem =
        nameProblem(f.path) ?? (f.path.split('/').includes('') ? 'it has an empty folder name' : undefined);
      if (problem !== undefined)
        throw new PlatformError(
          'invalid_input',
          `file "${f.path}" refused: ${problem}; nothing was uploaded`,
        );
      if (seen.has(f.path)) throw new PlatformError('invalid_input', `file "${f.path}" is listed twice`);
      seen.add(f.path);
    }
    const bytes = files.reduce((s, f) => s + f.size, 0);
    if (bytes > this.limits.maxBytes)
      throw new PlatformError(
        'invalid_input',
        `the upload holds ${bytes} bytes, more than the limit of ${this.limits.maxBytes}; split the dataset`,
      );
    const zip = files.length === 1 && files[0]!.path.toLowerCase().endsWith('.zip');
    if (files.length === 1 && !zip && !/\.(ya?ml|json|xml|txt|jpe?g|png|webp|bmp)$/i.test(files[0]!.path))
      throw new PlatformError('invalid_input', `"${files[0]!.path}" is neither a .zip nor a dataset folder`);
    const manifest: Manifest = {
      id: newId('upl')
        .toLowerCase()
        .replace(/[^a-z0-9_]/g, ''),
      projectId: ctx.projectId,
      userId: ctx.user.userId,
      createdAt: this.now(),
      kind: zip ? 'zip' : 'folder',
      files,
    };
    const home = this.home(ctx.projectId, manifest.id);
    await mkdir(path.join(home, 'files'), { recursive: true, mode: 0o700 });
    await writeFile(path.join(home, 'manifest.json'), JSON.stringify(manifest), { mode: 0o600, flag: 'wx' });
    return this.statusOf(manifest);
  }

  /** Bytes received so far per file (a client resumes each file from `received`). */
  async status(ctx: CallContext, id: string): Promise<UploadStatus> {
    return this.statusOf(await this.manifest(ctx, id));
  }

  /**
   * Writes `data` at `offset` of one declared file. A chunk may be sent again (after a lost
   * response); it may start anywhere up to the bytes received, never past them.
   */
  async writeChunk(
    ctx: CallContext,
    id: string,
    chunk: { path: string; offset: number; data: Buffer },
  ): Promise<{ received: number }> {
    const m = await this.manifest(ctx, id);
    const file = m.files.find((f) => f.path === chunk.path);
    if (file === undefined)
      throw new PlatformError(
        'invalid_input',
        `"${chunk.path}" is not a file of upload ${id}; declare it when starting`,
      );
    if (chunk.data.length > this.limits.chunkBytes)
      throw new PlatformError(
        'invalid_input',
        `chunks are at most ${this.limits.chunkBytes} bytes; this one has ${chunk.data.length}`,
      );
    if (chunk.offset + chunk.data.length > file.size)
      throw new PlatformError(
        'invalid_input',
        `"${chunk.path}" was declared as ${file.size} bytes; this chunk ends past it`,
      );
    const target = this.fileOf(m, chunk.path);
    const received = await sizeOf(target);
    if (chunk.offset > received)
      throw new PlatformError(
        'conflict',
        `"${chunk.path}" has ${received} bytes; send the chunk at offset ${received} first`,
        {
          received,
        },
      );
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    const fh = await open(target, received === 0 && chunk.offset === 0 ? 'w' : 'r+', 0o600);
    try {
      await fh.write(chunk.data, 0, chunk.data.length, chunk.offset);
    } finally {
      await fh.close();
    }
    return { received: Math.max(received, chunk.offset + chunk.data.length) };
  }

  /**
   * Checks every file arrived whole, extracts a zip (with the zip checks of imports), and copies the
   * files into the project's storage area under `uploads/<id>/`; the staging folder is removed.
   */
  async finish(ctx: CallContext, id: string): Promise<FinishedUpload> {
    const m = await this.manifest(ctx, id);
    const status = await this.statusOf(m);
    const missing = status.files.filter((f) => f.received !== f.size);
    if (missing.length > 0)
      throw new PlatformError(
        'conflict',
        `upload ${id} is not complete: ${missing.map((f) => `${f.path} ${f.received}/${f.size}`).join(', ')}; resend the rest`,
      );
    const home = this.home(m.projectId, m.id);
    let root = path.join(home, 'files');
    if (m.kind === 'zip') {
      root = path.join(home, 'extracted');
      await mkdir(root, { mode: 0o700 });
      await extractZipSafely(this.fileOf(m, m.files[0]!.path), root, this.zipLimits);
    }
    const paths = await listFiles(root);
    // a folder picked in the browser (or zipped with its folder) arrives as name/...: the dataset starts inside it
    const tops = new Set(paths.map((p) => p.split('/')[0]));
    const strip = tops.size === 1 && paths.every((p) => p.includes('/')) ? `${[...tops][0]}/` : '';
    let bytes = 0;
    for (const p of paths) {
      const rel = p.slice(strip.length);
      if (rel.split('/').some((s) => s.startsWith('.') || s === '__MACOSX')) continue;
      const put = await this.storage.put(
        `projects/${m.projectId}/uploads/${m.id}/${rel}`,
        createReadStream(path.join(root, ...p.split('/'))),
      );
      bytes += put.size;
    }
    await rm(home, { recursive: true, force: true });
    return { id: m.id, source: `storage:uploads/${m.id}`, files: paths.length, bytes };
  }

  /** Removes uploads older than the time limit (all projects). */
  async sweep(): Promise<number> {
    let removed = 0;
    for (const project of await readdir(this.dir).catch(() => [])) {
      for (const id of await readdir(path.join(this.dir, project)).catch(() => [])) {
        const home = path.join(this.dir, project, id);
        const info = await stat(home).catch(() => undefined);
        if (info !== undefined && info.mtimeMs + this.limits.ttlMs < this.now()) {
          await rm(home, { recursive: true, force: true });
          removed += 1;
        }
      }
    }
    return removed;
  }

  private home(projectId: string, id: string): string {
    return path.join(this.dir, projectId.replace(/[^A-Za-z0-9_-]/g, '_'), id);
  }

  private fileOf(m: Manifest, rel: string): string {
    const files = path.join(this.home(m.projectId, m.id), 'files');
    const target = path.resolve(files, ...rel.split('/'));
    if (!target.startsWith(files + path.sep))
      throw new PlatformError('invalid_input', `"${rel}" leaves the upload`);
    return target;
  }

  private async manifest(ctx: CallContext, id: string): Promise<Manifest> {
    requireWriter(ctx);
    const gone = new PlatformError(
      'not_found',
      `upload ${id} not found in project ${ctx.projectId}; start the upload again`,
    );
    if (!UPLOAD_ID.test(id)) throw gone;
    const text = await readFile(path.join(this.home(ctx.projectId, id), 'manifest.json'), 'utf8').catch(
      () => undefined,
    );
    if (text === undefined) throw gone;
    const m = manifestSchema.parse(JSON.parse(text));
    // staged bytes are the uploader's own until imported: another operator of the project cannot add to them
    if (m.projectId !== ctx.projectId || (m.userId !== ctx.user.userId && ctx.user.role !== 'admin'))
      throw gone;
    if (m.createdAt + this.limits.ttlMs < this.now()) throw gone;
    return m;
  }

  private async statusOf(m: Manifest): Promise<UploadStatus> {
    const files = await Promise.all(
      m.files.map(async (f) => ({ ...f, received: await sizeOf(this.fileOf(m, f.path)) })),
    );
    const bytes = files.reduce((s, f) => s + f.size, 0);
    const received = files.reduce((s, f) => s + f.received, 0);
    return {
      id: m.id,
      kind: m.kind,
      files,
      bytes,
      received,
      complete: received === bytes,
      chunkBytes: this.limits.chunkBytes,
      expiresAt: m.createdAt + this.limits.ttlMs,
    };
  }
}

function requireWriter(ctx: CallContext): void {
  if (!roleAtLeast(ctx.user.role, 'operator'))
    throw new PlatformError(
      'forbidden',
      `${ctx.user.email} is a ${ctx.user.role} in project ${ctx.projectId}; operators and above may upload datasets`,
    );
}

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(child);
      else if (e.isFile()) out.push(child);
    }
  };
  await walk('');
  return out.sort();
}
