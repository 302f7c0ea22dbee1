import { retry } from '../../../core/retry.js';

/** True for database errors that a retry of the whole transaction can fix: deadlocks, lock waits, a lost unique race, a busy SQLite file. */
export function isTransientDbError(err: unknown): boolean {
  const e = err as { errno?: number; code?: string } | null;
  return (
    e !== null &&
    typeof e === 'object' &&
    (e.errno === 1213 ||
      e.errno === 1205 ||
      e.errno === 1062 ||
      e.code === 'SQLITE_BUSY' ||
      e.code === 'SQLITE_CONSTRAINT_UNIQUE')
  );
}

/** Runs `fn` again (up to `tries` attempts in all, with randomised exponential backoff) while it fails with a transient database error. */
export async function retryTransient<T>(fn: () => Promise<T>, tries = 8): Promise<T> {
  return retry(() => fn(), {
    retries: tries - 1,
    minTimeout: 5,
    maxTimeout: 400,
    shouldRetry: isTransientDbError,
  });
}
