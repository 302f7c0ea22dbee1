import type { z } from 'zod';
/** The platform's small error vocabulary; every front end maps it to its own wire. */
export type ErrorCode =
  | 'not_found'
  | 'invalid_input'
  | 'unauthenticated'
  | 'forbidden'
  | 'conflict'
  | 'unavailable'
  | 'approval_required'
  | 'rate_limited'
  | 'internal';

/** A failure a person or a model can act on: a code, a message that says what to do, optional details. */
export class PlatformError extends Error {
  override readonly name = 'PlatformError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `err` is a PlatformError, optionally with the given code. */
export function isPlatformError(err: unknown, code?: ErrorCode): err is PlatformError {
  return err instanceof PlatformError && (code === undefined || err.code === code);
}

/** Turns a zod error into one readable line: `field: problem; field: problem`. */
export function describeZodError(error: {
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>;
}): string {
  return error.issues
    .map(
      (issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`,
    )
    .join('; ');
}

/** Parses `value` with `schema`; a failure is `invalid_input` naming `what` and every problem. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new PlatformError('invalid_input', `invalid ${what}: ${describeZodError(r.error)}`);
  return r.data;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR',
  'SQLITE_BUSY',
]);

/**
 * A driver error that means a backing service (database, cache) cannot be reached, as `unavailable`
 * with a message a person can act on; undefined for any other error.
 */
export function connectionFailure(err: unknown): PlatformError | undefined {
  const e = err as { code?: unknown; message?: unknown; fatal?: unknown } | null;
  if (e === null || typeof e !== 'object') return undefined;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (
    CONNECTION_CODES.has(code) ||
    e.fatal === true ||
    /Connection is closed|Stream isn't writeable|connect ECONNREFUSED/.test(message)
  ) {
    return new PlatformError(
      'unavailable',
      'a backing service (database or cache) is not reachable right now; try again shortly, /readyz shows which one',
    );
  }
  return undefined;
}
