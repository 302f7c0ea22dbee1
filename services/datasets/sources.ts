import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DatasetFiles } from '../../vision/formats/index.js';
import { PlatformError } from '../../core/errors.js';
import type { Storage } from '../infra/storage/port.js';
import { resolveImportPath, resolveStoragePrefix, type PathRule } from './roots.js';
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

/** Who opens a source and what they may read: server paths under the import roots, storage only in their project's area. */
export interface SourceAccess {
  projectId: string;
  imports: PathRule;
}

/**
 * Opens a source for reading; zips are checked and extracted to a temporary folder first. Server
 * paths are resolved with `realpath` and must lie under the import roots; storage prefixes are
 * confined to the caller's project area.
 */
export async function openSource(
  spec: ImportSourceSpec,
  deps: { storage: Storage; zipLimits: ZipLimits; access: SourceAccess },
): Promise<OpenedSource> {
  switch (spec.kind) {
    case 'folder': {
      const real = await resolveImportPath(spec.path, deps.access.imports, 'folder');
      return openFolder(real, `folder ${spec.path}`, async () => undefined);
    }
    case 'zip': {
      const zipFile =
        'path' in spec ? await resolveImportPath(spec.path, deps.access.imports, 'zip') : undefined;
      const dir = await mkdtemp(path.join(tmpdir(), 'via-zip-'));
      const cleanup = () => rm(dir, { recursive: true, force: true });
      try {
        await extractZipSafely('buffer' in spec ? spec.buffer : zipFile!, dir, deps.zipLimits);
        return await openFolder(dir, 'path' in spec ? `zip ${spec.path}` : 'zip upload', cleanup);
      } catch (err) {
        await cleanup();
        throw err;
      }
    }
    case 'storage':
      return openStoragePrefix(deps.storage, resolveStoragePrefix(deps.access.projectId, spec.prefix));
  }
}

async function openFolder(root: string, origin: string, cleanup: () => Promise<void>): Promise<OpenedSource> {
  const info = await stat(root).catch(() => undefined);
  if (info === undefined || !info.isDirectory())
    throw new PlatformError(
      'not_found',
      `dataset folder "${root}" does not exist or is not a folder; pass the folder that holds images/ (and labels/ or annotations)`,
    );
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
  // only the files listed above are readable: a path named inside an annotation file (COCO file_name, VOC filename) cannot leave the folder
  const listed = new Set(paths);
  const abs = (p: string) => {
    if (!listed.has(p)) throw new PlatformError('not_found', `"${p}" is not a file of this dataset`);
    return path.join(root, ...p.split('/'));
  };
  return {
    origin,
    paths,
    readText: async (p) => readFile(abs(p), 'utf8'),
    readBuffer: async (p) => readFile(abs(p)),
    cleanup,
  };
}

/** Reads the objects under `base`, which the caller has already confined to its project's area. */
async function openStoragePrefix(storage: Storage, base: string): Promise<OpenedSource> {
  const objects = await storage.list(base);
  if (objects.length === 0)
    throw new PlatformError(
      'not_found',
      `no objects under storage prefix "${base}"; upload the dataset files there first`,
    );
  const paths = objects
    .map((o) => o.key.slice(base.length))
    .filter((p) => p !== '' && !p.split('/').some((s) => s.startsWith('.') || s === ''))
    .sort();
  const listed = new Set(paths);
  const key = (p: string) => {
    if (!listed.has(p)) throw new PlatformError('not_found', `"${p}" is not a file of this dataset`);
    return base + p;
  };
  return {
    origin: `storage ${base}`,
    paths,
    readText: async (p) => (await storage.getBuffer(key(p))).toString('utf8'),
    readBuffer: async (p) => storage.getBuffer(key(p)),
    cleanup: async () => undefined,
  };
}
