import pRetry from 'p-retry';

/** How `retry` retries: attempts after the first, the backoff window, and which errors are worth another try. */
export interface RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** First pause (ms); each further pause doubles, randomised, up to `maxTimeout`. */
  minTimeout?: number;
  maxTimeout?: number;
  /** Randomise each pause by up to 2x (default true; false keeps exact doubling, e.g. when a log says when the next try is). */
  randomize?: boolean;
  /** Stop retrying once this much time (ms) has passed since the first attempt (default: no limit). */
  maxRetryTime?: number;
  /** False stops at once and rethrows the error (default: every error is retried). */
  shouldRetry?: (err: unknown) => boolean;
  /** Called before each pause (logging). */
  onRetry?: (err: unknown, attempt: number) => void;
  signal?: AbortSignal;
  /** Let the process exit while waiting between attempts (a background reconnect). */
  unref?: boolean;
}

/**
 * Runs `fn` until it succeeds or the retries (or `maxRetryTime`) run out, with randomised exponential
 * backoff (p-retry), and rethrows the last error. The one retry helper of the code base. Note p-retry's
 * rule: a `TypeError` that is not a network error (`fetch failed`) is a bug and is never retried.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const { shouldRetry } = opts;
  return pRetry(fn, {
    retries: opts.retries,
    minTimeout: opts.minTimeout ?? 10,
    maxTimeout: opts.maxTimeout ?? 1000,
    factor: 2,
    randomize: opts.randomize ?? true,
    ...(opts.maxRetryTime === undefined ? {} : { maxRetryTime: opts.maxRetryTime }),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.unref ? { unref: true } : {}),
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

/** Runs `fn` every `ms` (never overlapping itself, never keeping the process alive); returns the stop function. */
export function every(ms: number, fn: () => Promise<void>): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void fn().finally(() => {
      running = false;
    });
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
