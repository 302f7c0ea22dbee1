import { existsSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlatformError } from '../../core/errors.js';

/**
 * Where server paths may be read (imports) or written (exports). A path is allowed when, after
 * `realpath` (so a symbolic link that leaves a root is refused), it lies under one of `roots` and
 * not under a protected folder (the app's own folder, DATA_DIR), unless it is under one of
 * `carveOuts` (the platform's own import/export folders inside DATA_DIR).
 */
export interface PathRule {
  roots: string[];
  protectedDirs: string[];
  carveOuts: string[];
}

/** The rules of the dataset service: reads under import roots, writes under export roots. */
export interface DatasetPathPolicy {
  imports: PathRule;
  exports: PathRule;
}

/** No server path is readable or writable: what a service gets when nothing is configured. */
export const NO_SERVER_PATHS: DatasetPathPolicy = {
  imports: { roots: [], protectedDirs: [], carveOuts: [] },
  exports: { roots: [], protectedDirs: [], carveOuts: [] },
};

/** The folder the app is installed in (the one holding its package.json): never read by imports nor written by exports. */
export const APP_DIR = findAppDir(path.dirname(fileURLToPath(import.meta.url)));

function findAppDir(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..');
  }
}

/** Splits `IMPORT_ROOTS` / `EXPORT_ROOTS` (comma-separated folders) into absolute paths. */
export function parseRoots(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => path.resolve(s));
  return list.length === 0 ? undefined : list;
}

/**
 * The policy of a platform: imports under `importRoots` (default `DATA_DIR/imports`) plus the demo
 * folder `DATA_DIR/demo`, exports under `exportRoots` (default `DATA_DIR/exports`); the app's folder
 * and the rest of DATA_DIR (database, storage, secrets) are never read or written.
 */
export function datasetPathPolicy(opts: {
  dataDir: string;
  importRoots?: string[];
  exportRoots?: string[];
  appDir?: string;
}): DatasetPathPolicy {
  const dataDir = path.resolve(opts.dataDir);
  const protectedDirs = [opts.appDir ?? APP_DIR, dataDir];
  const { imports, demo, exports } = defaultDataFolders(dataDir);
  return {
    imports: { roots: [...(opts.importRoots ?? [imports]), demo], protectedDirs, carveOuts: [imports, demo] },
    exports: { roots: opts.exportRoots ?? [exports], protectedDirs, carveOuts: [exports] },
  };
}

/** The platform's own import, demo and export folders inside DATA_DIR. */
export function defaultDataFolders(dataDir: string): { imports: string; demo: string; exports: string } {
  const d = path.resolve(dataDir);
  return { imports: path.join(d, 'imports'), demo: path.join(d, 'demo'), exports: path.join(d, 'exports') };
}

/** Resolves a path given for reading (folder or zip) to its real location, refusing anything outside the import roots. */
export async function resolveImportPath(
  given: string,
  rule: PathRule,
  kind: 'folder' | 'zip',
): Promise<string> {
  const allowedList = describeRoots(rule);
  if (rule.roots.length === 0)
    throw new PlatformError(
      'forbidden',
      `imports from server paths are disabled on this platform; set IMPORT_ROOTS, or upload the dataset instead`,
    );
  if (given.includes('\0'))
    throw new PlatformError('invalid_input', `"${given.replace(/\0/g, '\\0')}" is not a valid path`);
  const candidate = path.isAbsolute(given) ? path.resolve(given) : path.resolve(rule.roots[0]!, given);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    // do not say whether a path outside the roots exists
    if (!(await isAllowed(candidate, rule)))
      throw new PlatformError(
        'forbidden',
        `"${given}" is outside the import folders; imports are read only under: ${allowedList}; set IMPORT_ROOTS to add a folder${PROTECTED_NOTE}`,
      );
    throw new PlatformError(
      'not_found',
      `${kind === 'zip' ? 'zip file' : 'dataset folder'} "${given}" does not exist; put it under: ${allowedList}`,
    );
  }
  if (!(await isAllowed(real, rule))) {
    const via = real === candidate ? '' : ` (it resolves to a place outside them)`;
    throw new PlatformError(
      'forbidden',
      `"${given}" is outside the import folders${via}; imports are read only under: ${allowedList}; set IMPORT_ROOTS to add a folder${PROTECTED_NOTE}`,
    );
  }
  const info = await stat(real);
  if (kind === 'zip' && !info.isFile())
    throw new PlatformError(
      'invalid_input',
      `"${given}" is not a file; pass a .zip file under: ${allowedList}`,
    );
  if (kind === 'folder' && !info.isDirectory())
    throw new PlatformError(
      'not_found',
      `dataset folder "${given}" is not a folder; pass the folder that holds images/ (and labels/ or annotations)`,
    );
  return real;
}

/**
 * Resolves a path given for writing (an export folder or zip file) to its real location: the
 * nearest existing ancestor is resolved with `realpath`, so a symbolic link cannot lead outside the
 * export roots. Refuses anything outside them, and anything in the app's own folder.
 */
export async function resolveExportPath(given: string, rule: PathRule): Promise<string> {
  const allowedList = describeRoots(rule);
  const hint = `exports go to storage (omit folder and zipPath to get a download link) or under: ${allowedList}; set EXPORT_ROOTS to add a folder${PROTECTED_NOTE}`;
  if (rule.roots.length === 0)
    throw new PlatformError(
      'forbidden',
      `exports to server paths are disabled on this platform; omit folder and zipPath to get a download link from storage, or set EXPORT_ROOTS`,
    );
  if (given.includes('\0'))
    throw new PlatformError('invalid_input', `"${given.replace(/\0/g, '\\0')}" is not a valid path`);
  const candidate = path.isAbsolute(given) ? path.resolve(given) : path.resolve(rule.roots[0]!, given);
  const tail: string[] = [];
  let existing = candidate;
  let real: string | undefined;
  for (;;) {
    try {
      real = await realpath(existing);
      break;
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) break;
      tail.unshift(path.basename(existing));
      existing = parent;
    }
  }
  const target = real === undefined ? candidate : path.join(real, ...tail);
  if (!(await isAllowed(target, rule)))
    throw new PlatformError('forbidden', `"${given}" is outside the export folders; ${hint}`);
  return target;
}

const PROTECTED_NOTE =
  " (the app's own folder and DATA_DIR, apart from its imports/, demo/ and exports/ folders, are never used)";

/** True when `p` (already resolved) is under a root and not in a protected folder outside the carve-outs. */
async function isAllowed(p: string, rule: PathRule): Promise<boolean> {
  const [roots, protectedDirs, carveOuts] = await Promise.all(
    [rule.roots, rule.protectedDirs, rule.carveOuts].map((list) => Promise.all(list.map(resolveExisting))),
  );
  const under = (dir: string) => within(p, dir);
  if (!roots!.some(under)) return false;
  return !protectedDirs!.some(under) || carveOuts!.some(under);
}

/** `realpath` of a folder when it exists (roots may be created later), its absolute path otherwise. */
async function resolveExisting(dir: string): Promise<string> {
  return realpath(dir).catch(() => path.resolve(dir));
}

/** Whether `p` is `dir` or inside it. */
export function within(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

function describeRoots(rule: PathRule): string {
  return rule.roots.length === 0 ? '(none)' : rule.roots.join(', ');
}

/** The storage area of a project: every object a dataset import of that project may read, and where its images live. */
export function projectStoragePrefix(projectId: string): string {
  const safe = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(projectId)
    ? projectId
    : encodeURIComponent(projectId).replace(/\./g, '%2E');
  return `projects/${safe}/`;
}

/**
 * The storage prefix a `storage:<prefix>` import of `projectId` reads: relative prefixes are taken
 * inside the project's area (`projects/<id>/`); a prefix naming another project, or any other
 * top-level area (shared image store, other projects' exports), is refused.
 */
export function resolveStoragePrefix(projectId: string, given: string): string {
  const own = projectStoragePrefix(projectId);
  const hint = `storage imports read only this project's area "${own}"; pass a prefix inside it, e.g. storage:uploads/set1`;
  const trimmed = given.trim();
  if (/[\\\0]/.test(trimmed) || trimmed.startsWith('/'))
    throw new PlatformError('invalid_input', `storage prefix "${given}" is not valid; ${hint}`);
  const segments = trimmed.split('/');
  if (segments.some((s, i) => s === '.' || s === '..' || (s === '' && i < segments.length - 1)))
    throw new PlatformError(
      'invalid_input',
      `storage prefix "${given}" is not valid (no "." or ".." or empty parts); ${hint}`,
    );
  let rel = trimmed;
  if (trimmed === own.slice(0, -1) || trimmed.startsWith(own)) rel = trimmed.slice(own.length);
  else if (trimmed === 'projects' || trimmed.startsWith('projects/'))
    throw new PlatformError('forbidden', `storage prefix "${given}" belongs to another project; ${hint}`);
  const base = own + rel;
  return base.endsWith('/') ? base : `${base}/`;
}
