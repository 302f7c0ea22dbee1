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

/** Runs `fn` again (up to `tries` times, with a short random pause) while it fails with a transient database error. */
export async function retryTransient<T>(fn: () => Promise<T>, tries = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= tries || !isTransientDbError(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * attempt));
    }
  }
}
