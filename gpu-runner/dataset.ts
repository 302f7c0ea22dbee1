import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'yaml';
import { PlatformError } from '../core/errors.js';
import type { MessagePayload } from '../protocol/envelope.js';

type DatasetFile = MessagePayload<'train.start'>['dataset']['files'][number];

/** Rejects paths that would escape the dataset folder. */
export function safeRelative(p: string): string {
  const norm = path.posix.normalize(p.replace(/\\/g, '/'));
  if (norm.startsWith('../') || norm === '..' || path.posix.isAbsolute(norm) || norm.includes('\0')) {
    throw new PlatformError(
      'invalid_input',
      `dataset file path "${p}" leaves the dataset folder; paths must be relative like images/train/a.jpg`,
    );
  }
  return norm;
}

/**
 * Downloads every dataset file through its signed URL into `dir`, verifying size and sha256. Files
 * already there and verified are kept, so a retry after a failure fetches only what is missing; an
 * error worth retrying (storage unreachable, 5xx) is a PlatformError with `details.retryable`.
 */
export async function downloadDataset(
  files: DatasetFile[],
  dir: string,
  opts: { signal?: AbortSignal; concurrency?: number; fetch?: typeof fetch } = {},
): Promise<void> {
  const doFetch = opts.fetch ?? fetch;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++]!;
      const rel = safeRelative(f.path);
      const dest = path.join(dir, rel);
      await mkdir(path.dirname(dest), { recursive: true });
      if (existsSync(dest) && (await stat(dest)).size === f.size && (await sha256File(dest)) === f.sha256)
        continue;
      // a signal per request: fetch keeps its abort listener until GC, which piles up on a shared signal over thousands of files
      const request = new AbortController();
      const onAbort = () => request.abort(opts.signal?.reason);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await fetchInto(doFetch, f, rel, dest, request.signal);
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(opts.concurrency ?? 4, Math.max(1, files.length)) }, worker),
  );
}

/**
 * Says which storage address a runner could not reach (without the signature) and what to set:
 * the platform signs URLs with PUBLIC_URL, or with the URL a `serve` advertised.
 */
export function storageUnreachable(what: string, url: string, err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (err as Error).message;
  let where = url;
  try {
    const u = new URL(url);
    where = `${u.origin}${u.pathname}`;
  } catch {
    // not a URL: show it as given
  }
  return `${what} failed: cannot reach ${where} (${reason}); this runner must reach the platform's storage there — set PUBLIC_URL on the platform (every serve, MCP and CLI process) to an address this machine reaches, or start a serve so it advertises its URL`;
}

/** Fetches one file to `dest`, hashing it on the way and refusing it when its sha256 differs. */
async function fetchInto(
  doFetch: typeof fetch,
  f: DatasetFile,
  rel: string,
  dest: string,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await doFetch(f.url, { signal });
  } catch (err) {
    if (signal.aborted) throw err;
    throw new PlatformError(
      'unavailable',
      storageUnreachable(`downloading dataset file ${rel}`, f.url, err),
      { retryable: true },
    );
  }
  if (!res.ok || res.body === null)
    throw new PlatformError(
      'unavailable',
      `downloading dataset file ${rel} failed with HTTP ${res.status}; the signed URL may have expired, retry the job`,
      // the platform serving the URL restarting (5xx) or busy: worth another try; a refused signature is not
      res.status >= 500 || res.status === 408 || res.status === 429
        ? { retryable: true, status: res.status }
        : { status: res.status },
    );
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    hasher,
    createWriteStream(dest),
  );
  const digest = hash.digest('hex');
  if (digest !== f.sha256)
    throw new PlatformError(
      'invalid_input',
      `dataset file ${rel} is corrupt: sha256 ${digest.slice(0, 12)}… does not match ${f.sha256.slice(0, 12)}…; re-upload the dataset version`,
    );
}

async function sha256File(p: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(p))
    .digest('hex');
}

/** Writes data.yaml for a YOLO-layout folder; val falls back to train when the version has no val split. */
export async function writeDataYaml(dir: string, classNames: string[]): Promise<string> {
  const has = (split: string) => existsSync(path.join(dir, 'images', split));
  const doc: Record<string, unknown> = {
    path: dir,
    train: 'images/train',
    val: has('val') ? 'images/val' : 'images/train',
  };
  if (has('test')) doc.test = 'images/test';
  doc.nc = classNames.length;
  doc.names = classNames;
  const file = path.join(dir, 'data.yaml');
  await writeFile(file, stringify(doc));
  return file;
}

/** Fails fast with a clear message when the dataset has no training images or no labels at all. */
export async function checkDataset(dir: string, name: string): Promise<void> {
  const imgDir = path.join(dir, 'images', 'train');
  const images = existsSync(imgDir)
    ? (await readdir(imgDir)).filter((f) => /\.(jpe?g|png|bmp|webp)$/i.test(f))
    : [];
  if (images.length === 0)
    throw new PlatformError(
      'invalid_input',
      `dataset ${name} has no training images (images/train is empty); add images to its train split`,
    );
  const labelDir = path.join(dir, 'labels', 'train');
  const labels = existsSync(labelDir) ? await readdir(labelDir) : [];
  for (const l of labels) {
    if ((await readFile(path.join(labelDir, l), 'utf8')).trim() !== '') return;
  }
  throw new PlatformError(
    'invalid_input',
    `dataset ${name} has no labels: none of its ${images.length} training images has a box (labels/train/*.txt empty or missing); annotate it before training`,
  );
}
