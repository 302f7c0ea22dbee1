import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { PlatformError } from '../../core/errors.js';

/** Bounds an uploaded zip must stay within before anything is extracted. */
export interface ZipLimits {
  /** Most entries (files and folders) in the archive. */
  maxEntries: number;
  /** Largest uncompressed size of one entry, bytes. */
  maxEntryBytes: number;
  /** Largest uncompressed size of all entries together, bytes. */
  maxTotalBytes: number;
  /** Highest uncompressed/compressed ratio of any entry, and of the whole archive (a decompression bomb sign). */
  maxRatio: number;
}

/** Defaults: 100k entries, 512 MiB per entry, 16 GiB in all, ratio 100. */
export const DEFAULT_ZIP_LIMITS: ZipLimits = {
  maxEntries: 100_000,
  maxEntryBytes: 512 * 1024 ** 2,
  maxTotalBytes: 16 * 1024 ** 3,
  maxRatio: 100,
};

// Deflate has a fixed overhead, so a tiny entry's ratio says nothing: below this the ratio is not judged.
const RATIO_MIN_BYTES = 4096;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

function reject(message: string, entry?: string): PlatformError {
  return new PlatformError(
    'invalid_input',
    `${message}; nothing was imported`,
    entry === undefined ? undefined : { entry },
  );
}

/** Why a relative path (a zip entry, an uploaded file) is unsafe to write under a folder, if it is. */
export function nameProblem(name: string): string | undefined {
  if (name.includes('\0')) return 'its name contains a NUL byte';
  if (name.includes('\\')) return 'its name contains a backslash';
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) return 'it has an absolute path';
  if (name.split('/').includes('..')) return 'its path climbs out of the archive ("..", zip slip)';
  return undefined;
}

interface CheckedEntry {
  entry: yauzl.Entry;
  name: string;
}

/**
 * Extracts a zip into `dir` after checking every entry first: no path traversal, no absolute
 * paths, no symbolic links, no encrypted entries, entry count, per-entry and total uncompressed
 * size, and compression ratio. Any violation throws `invalid_input` naming the entry, before a
 * single byte is written; sizes are enforced again while inflating.
 */
export async function extractZipSafely(
  source: string | Buffer,
  dir: string,
  limits: ZipLimits = DEFAULT_ZIP_LIMITS,
): Promise<string[]> {
  const options: yauzl.Options = {
    lazyEntries: true,
    autoClose: false,
    decodeStrings: false,
    validateEntrySizes: true,
  };
  let zip: yauzl.ZipFile;
  try {
    zip = await new Promise<yauzl.ZipFile>((resolve, reject_) => {
      const cb = (err: Error | null, z: yauzl.ZipFile) => (err ? reject_(err) : resolve(z));
      if (typeof source === 'string') yauzl.open(source, options, cb);
      else yauzl.fromBuffer(source, options, cb);
    });
  } catch (err) {
    throw reject(`not a readable zip archive: ${(err as Error).message}`);
  }
  try {
    if (zip.entryCount > limits.maxEntries)
      throw reject(`zip has ${zip.entryCount} entries, more than the limit of ${limits.maxEntries}`);
    const entries = await readEntries(zip);
    const checked: CheckedEntry[] = [];
    let total = 0;
    let compressed = 0;
    for (const entry of entries) {
      const name = decodeName(entry);
      const problem = nameProblem(name);
      if (problem !== undefined) throw reject(`zip entry "${name}" rejected: ${problem}`, name);
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      if (mode === S_IFLNK) throw reject(`zip entry "${name}" rejected: it is a symbolic link`, name);
      if ((entry.generalPurposeBitFlag & 0x1) !== 0)
        throw reject(`zip entry "${name}" rejected: it is encrypted`, name);
      if (name.endsWith('/')) continue;
      if (entry.uncompressedSize > limits.maxEntryBytes) {
        throw reject(
          `zip entry "${name}" rejected: ${entry.uncompressedSize} bytes uncompressed, more than the per-entry limit of ${limits.maxEntryBytes}`,
          name,
        );
      }
      const ratio = entry.uncompressedSize / Math.max(1, entry.compressedSize);
      if (entry.uncompressedSize > RATIO_MIN_BYTES && ratio > limits.maxRatio) {
        throw reject(
          `zip entry "${name}" rejected: compression ratio ${Math.round(ratio)}:1 exceeds ${limits.maxRatio}:1 (decompression bomb)`,
          name,
        );
      }
      total += entry.uncompressedSize;
      compressed += entry.compressedSize;
      if (total > limits.maxTotalBytes)
        throw reject(
          `zip rejected at entry "${name}": more than ${limits.maxTotalBytes} bytes uncompressed in all`,
          name,
        );
      checked.push({ entry, name });
    }
    // Many entries each just under a per-entry threshold add up to a bomb: judge the archive as a whole too.
    const overall = total / Math.max(1, compressed);
    if (total > RATIO_MIN_BYTES && overall > limits.maxRatio) {
      throw reject(
        `zip rejected: the archive inflates ${Math.round(overall)}:1 in all (${total} bytes from ${compressed}), more than ${limits.maxRatio}:1 (decompression bomb)`,
      );
    }
    const root = path.resolve(dir);
    const written: string[] = [];
    for (const { entry, name } of checked) {
      const target = path.resolve(root, name);
      if (!target.startsWith(root + path.sep))
        throw reject(`zip entry "${name}" rejected: it resolves outside the extraction folder`, name);
      try {
        await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
        const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject_) =>
          zip.openReadStream(entry, (err, s) => (err ? reject_(err) : resolve(s))),
        );
        await pipeline(
          stream,
          byteLimit(name, entry.uncompressedSize),
          createWriteStream(target, { flags: 'wx', mode: 0o600 }),
        );
      } catch (err) {
        if (err instanceof PlatformError) throw err;
        throw reject(
          `zip entry "${name}" could not be extracted (${(err as Error).message}); is the archive damaged or does it list the same path twice?`,
          name,
        );
      }
      written.push(name);
    }
    return written;
  } finally {
    zip.close();
  }
}

function readEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject_) => {
    const entries: yauzl.Entry[] = [];
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.once('end', () => resolve(entries));
    zip.once('error', (err: Error) => reject_(reject(`corrupt zip archive: ${err.message}`)));
    zip.readEntry();
  });
}

function decodeName(entry: yauzl.Entry): string {
  const raw = entry.fileName as unknown;
  if (typeof raw === 'string') return raw;
  const lowLevel = (
    yauzl as unknown as {
      getFileNameLowLevel: (flag: number, name: Buffer, extra: unknown, strict: boolean) => string;
    }
  ).getFileNameLowLevel;
  return lowLevel(entry.generalPurposeBitFlag, raw as Buffer, entry.extraFields, true);
}

function byteLimit(name: string, limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(reject(`zip entry "${name}" rejected: inflates past its declared size`, name));
      else cb(null, chunk);
    },
  });
}
