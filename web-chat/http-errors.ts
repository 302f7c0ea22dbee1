import type { ErrorRequestHandler, Response } from 'express';
import { connectionFailure, isPlatformError, PlatformError, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';

const STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  approval_required: 409,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

/** The HTTP status of a PlatformError code. */
export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** Turns anything thrown into a PlatformError: body-parser failures become invalid_input, unknown errors internal. */
export function toPlatformError(err: unknown): PlatformError {
  if (isPlatformError(err)) return err;
  const e = err as { type?: string; status?: number; message?: string; limit?: number };
  if (e?.type === 'entity.parse.failed')
    return new PlatformError('invalid_input', 'the request body is not valid JSON; send a JSON object');
  if (e?.type === 'entity.too.large')
    return new PlatformError(
      'invalid_input',
      `the request body is too large; send less than ${Math.round((e.limit ?? 1024 * 1024) / (1024 * 1024))} MB`,
    );
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported')
    return new PlatformError('invalid_input', 'unsupported body encoding; send UTF-8 JSON');
  const down = connectionFailure(err);
  if (down !== undefined) return down;
  return new PlatformError(
    'internal',
    'something went wrong on the server; try again, and tell an admin if it keeps happening',
  );
}

/** Writes `err` as `{ error: { code, message, details? } }` with its HTTP status; internal errors are logged, never sent. */
export function sendError(res: Response, err: unknown, log?: Logger): void {
  const pe = toPlatformError(err);
  if (pe.code === 'internal' && log) log.error({ err }, 'request failed');
  if (res.headersSent) return;
  const status = httpStatusOf(pe.code);
  if (status === 503) res.set('Retry-After', '5');
  res
    .status(status)
    .json({ error: pe.code === 'internal' ? { code: pe.code, message: pe.message } : pe.toJSON() });
}

/** The one express error handler mapping PlatformError (and anything else) to HTTP. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    sendError(res, err, log);
  };
}
