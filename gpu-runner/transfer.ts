import path from 'node:path';
import { isPlatformError, PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { retry } from '../core/retry.js';
import type { MessagePayload } from '../protocol/envelope.js';
import { downloadDataset } from './dataset.js';

type DatasetFiles = MessagePayload<'train.start'>['dataset']['files'];

/** How a transfer retries: while storage (or the platform serving its signed URLs) is unreachable, 1 s doubling to 15 s, for `retryMs` in all. */
export interface TransferOptions {
  jobId: string;
  /** How long to keep retrying (ms). */
  retryMs: number;
  signal: AbortSignal;
  log: Logger;
}

const CONTENT_TYPES: Record<string, string> = {
  '.onnx': 'application/octet-stream',
  '.json': 'application/json',
  '.csv': 'text/csv',
  '.md': 'text/markdown',
  '.log': 'text/plain',
};

const BACKOFF = { retries: Infinity, minTimeout: 1000, maxTimeout: 15_000, randomize: false } as const;

/** An upload answer that retrying cannot change (e.g. 403 for an expired URL). */
class PermanentUploadError extends Error {}

/** An upload attempt that may succeed later (unreachable, 5xx, 408, 429); `problem` says what happened. */
class TransientUploadError extends Error {}

/** Downloads dataset files (or a checkpoint) into `dir`, retrying while the platform is unreachable or answers 5xx. */
export async function downloadWithRetry(files: DatasetFiles, dir: string, o: TransferOptions): Promise<void> {
  let last: unknown;
  try {
    await retry(
      async (attempt) => {
        await downloadDataset(files, dir, { signal: o.signal });
        if (attempt > 1) o.log.info({ jobId: o.jobId, attempt }, 'dataset downloaded after retrying');
      },
      {
        ...BACKOFF,
        maxRetryTime: o.retryMs,
        signal: o.signal,
        shouldRetry: (err) => isPlatformError(err) && err.details?.retryable === true,
        onRetry: (err, attempt) => {
          last = err;
          if (isPlatformError(err) && err.details?.retryable === true)
            o.log.warn(
              { jobId: o.jobId, attempt, problem: err.message },
              'dataset download failed; retrying',
            );
        },
      },
    );
  } catch (err) {
    if (o.signal.aborted) throw last ?? err;
    if (!isPlatformError(err) || err.details?.retryable !== true) throw err;
    throw new PlatformError(
      'unavailable',
      `${err.message} (still failing after retrying for ${Math.round(o.retryMs / 1000)} s)`,
    );
  }
}

/**
 * PUTs one artifact to a signed URL, retrying while the target is unreachable or answers
 * 5xx/408/429, up to `retryMs`; any other answer (e.g. 403, an expired URL) fails at once.
 */
export async function putWithRetry(
  name: string,
  url: string,
  body: Buffer<ArrayBuffer>,
  o: TransferOptions,
): Promise<void> {
  try {
    await retry(
      async (attempt) => {
        await putOnce(name, url, body, o.signal);
        if (attempt > 1)
          o.log.info({ jobId: o.jobId, artifact: name, attempt }, 'artifact uploaded after retrying');
      },
      {
        ...BACKOFF,
        maxRetryTime: o.retryMs,
        signal: o.signal,
        shouldRetry: (err) => err instanceof TransientUploadError,
        onRetry: (err, attempt) => {
          if (err instanceof TransientUploadError)
            o.log.warn(
              { jobId: o.jobId, artifact: name, attempt, problem: err.message },
              'artifact upload failed; retrying',
            );
        },
      },
    );
  } catch (err) {
    if (o.signal.aborted) throw new Error('cancelled while uploading');
    if (!(err instanceof TransientUploadError)) throw err;
    throw new Error(
      `uploading ${name} to ${urlWithoutQuery(url)} failed: storage unreachable for ${Math.round(o.retryMs / 1000)} s (${err.message}); check that this runner reaches that address (the platform signs with PUBLIC_URL, or the URL a serve advertised) and start the training again`,
    );
  }
}

async function putOnce(
  name: string,
  url: string,
  body: Buffer<ArrayBuffer>,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'PUT',
      body,
      headers: {
        'content-type': CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream',
        'content-length': String(body.length),
      },
      signal: AbortSignal.any([signal, AbortSignal.timeout(300_000)]),
    });
  } catch (err) {
    if (signal.aborted) throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new TransientUploadError(cause?.code ?? cause?.message ?? (err as Error).message);
  }
  if (res.ok) return;
  const problem = `HTTP ${res.status} ${(await res.text().catch(() => '')).slice(0, 200)}`.trim();
  if (res.status < 500 && res.status !== 408 && res.status !== 429)
    throw new PermanentUploadError(
      `uploading ${name} failed with ${problem}; the presigned URL may have expired`,
    );
  throw new TransientUploadError(problem);
}

/** A signed URL without its signature, for messages. */
function urlWithoutQuery(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
