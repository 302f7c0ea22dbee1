import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { PlatformError } from '../../core/errors.js';

/**
 * Canonical JSON (RFC 8785, JCS): keys sorted, undefined properties dropped, numbers in their
 * shortest ECMAScript form (so `1`, `1.0` and `1e0` are the same). Throws `invalid_input` for
 * values JSON cannot carry (NaN, Infinity, bigint, functions, cycles).
 */
export function canonicalJson(value: unknown): string {
  rejectUnrepresentable(value, '$', new Set());
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (err) {
    throw new PlatformError(
      'invalid_input',
      `arguments cannot be written as JSON: ${(err as Error).message}`,
    );
  }
  if (text === undefined)
    throw new PlatformError('invalid_input', 'arguments cannot be written as JSON: the value is undefined');
  return text;
}

/** Hex sha256 of `canonicalJson(value)`: what an approval binds. */
export function argsHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** Hex sha256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function rejectUnrepresentable(value: unknown, where: string, seen: Set<object>): void {
  if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') {
    throw new PlatformError(
      'invalid_input',
      `arguments cannot be written as JSON: ${where} is a ${typeof value}`,
    );
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new PlatformError(
      'invalid_input',
      `arguments cannot be written as JSON: ${where} is ${String(value)}`,
    );
  }
  if (value === null || typeof value !== 'object') return;
  if (seen.has(value))
    throw new PlatformError(
      'invalid_input',
      `arguments cannot be written as JSON: ${where} refers to itself`,
    );
  seen.add(value);
  if (Array.isArray(value)) value.forEach((v, i) => rejectUnrepresentable(v, `${where}[${i}]`, seen));
  else if (typeof (value as { toJSON?: unknown }).toJSON !== 'function') {
    for (const [k, v] of Object.entries(value))
      if (v !== undefined) rejectUnrepresentable(v, `${where}.${k}`, seen);
  }
  seen.delete(value);
}
