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
export function describeZodError(error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> }): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
