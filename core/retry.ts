import pRetry from 'p-retry';

/** How `retry` retries: attempts after the first, the backoff window, and which errors are worth another try. */
export interface RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** First pause (ms); each further pause doubles, randomised, up to `maxTimeout`. */
  minTimeout?: number;
  maxTimeout?: number;
  /** False stops at once and rethrows the error (default: every error is retried). */
  shouldRetry?: (err: unknown) => boolean;
  /** Called before each pause (logging). */
  onRetry?: (err: unknown, attempt: number) => void;
  signal?: AbortSignal;
}

/** Runs `fn` until it succeeds or the retries run out, with randomised exponential backoff (p-retry). The one retry helper of the code base. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const { shouldRetry } = opts;
  return pRetry(fn, {
    retries: opts.retries,
    minTimeout: opts.minTimeout ?? 10,
    maxTimeout: opts.maxTimeout ?? 1000,
    factor: 2,
    randomize: true,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(shouldRetry ? { shouldRetry: ({ error }) => shouldRetry(error) } : {}),
    ...(opts.onRetry
      ? { onFailedAttempt: ({ error, attemptNumber }) => opts.onRetry!(error, attemptNumber) }
      : {}),
  });
}

/** Resolves after `ms` (sooner, without error, when `signal` aborts). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
