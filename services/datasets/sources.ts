import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DatasetFiles } from '../../vision/formats/index.js';
import { PlatformError } from '../errors.js';
import type { Storage } from '../infra/storage/port.js';
import { extractZipSafely, type ZipLimits } from './zip.js';

/** Where an import reads from. */
export type ImportSourceSpec =
  | { kind: 'folder'; path: string }
  | { kind: 'zip'; path: string }
  | { kind: 'zip'; buffer: Buffer }
  | { kind: 'storage'; prefix: string };

/** An opened source: relative paths, text and byte readers, and a cleanup for temporary files. */
export interface OpenedSource extends DatasetFiles {
  /** Human-readable origin for reports (`folder /data/x`, `zip upload`, `storage datasets/in/`). */
  origin: string;
  readBuffer(path: string): Promise<Buffer>;
  cleanup(): Promise<void>;
}

/** Opens a source for reading; zips are checked and extracted to a temporary folder first. */
export async function openSource(spec: ImportSourceSpec, deps: { storage: Storage; zipLimits: ZipLimits }): Promise<OpenedSource> {
  switch (spec.kind) {
    case 'folder':
      return openFolder(spec.path, `folder ${spec.path}`, async () => undefined);
    case 'zip': {
      const dir = await mkdtemp(path.join(tmpdir(), 'via-zip-'));
      const cleanup = () => rm(dir, { recursive: true, force: true });
      try {
        await extractZipSafely('buffer' in spec ? spec.buffer : spec.path, dir, deps.zipLimits);
        return await openFolder(dir, 'path' in spec ? `zip ${spec.path}` : 'zip upload', cleanup);
      } catch (err) {
        await cleanup();
        throw err;
      }
    }
    case 'storage':
      return openStoragePrefix(deps.storage, spec.prefix);
  }
}

async function openFolder(root: string, origin: string, cleanup: () => Promise<void>): Promise<OpenedSource> {
  const info = await stat(root).catch(() => undefined);
  if (info === undefined || !info.isDirectory()) throw new PlatformError('not_found', `dataset folder "${root}" does not exist or is not a folder; pass the folder that holds images/ (and labels/ or annotations)`);
  const paths: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === '__MACOSX') continue;
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      // symbolic links are not followed: a dataset must not read outside its own folder
      if (e.isDirectory()) await walk(child);
      else if (e.isFile()) paths.push(child);
    }
  };
  await walk('');
  paths.sort();
  const abs = (p: string) => path.join(root, ...p.split('/'));
  return {
    origin,
    paths,
    readText: (p) => readFile(abs(p), 'utf8'),
    readBuffer: (p) => readFile(abs(p)),
    cleanup,
  };
}

async function openStoragePrefix(storage: Storage, prefix: string): Promise<OpenedSource> {
  const base = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  const objects = await storage.list(base);
  if (objects.length === 0) throw new PlatformError('not_found', `no objects under storage prefix "${base}"; upload the dataset files there first`);
  const paths = objects.map((o) => o.key.slice(base.length)).filter((p) => p !== '' && !p.split('/').some((s) => s.startsWith('.'))).sort();
  return {
    origin: `storage ${base}`,
    paths,
    readText: async (p) => (await storage.getBuffer(base + p)).toString('utf8'),
    readBuffer: (p) => storage.getBuffer(base + p),
    cleanup: async () => undefined,
  };
}
