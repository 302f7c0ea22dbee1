import { PlatformError } from '../../../core/errors.js';

const MAX_KEY_LENGTH = 1024;

/** Throws `invalid_input` unless `key` is a relative `a/b/c.ext` path with no `..`, `.`, empty segment, backslash or control character. */
export function assertValidKey(key: string, what = 'storage key'): void {
  const problem = keyProblem(key);
  if (problem)
    throw new PlatformError(
      'invalid_input',
      `invalid ${what} "${key.slice(0, 200)}": ${problem}; use a relative path like "datasets/helmets/img1.jpg"`,
    );
}

/** Throws `invalid_input` unless `prefix` is empty or a valid key, optionally ending with `/`. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  assertValidKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'storage prefix');
}

function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'it is empty';
  if (key.length > MAX_KEY_LENGTH) return `it is longer than ${MAX_KEY_LENGTH} characters`;
  if (key.startsWith('/')) return 'it is absolute (starts with "/")';
  if (key.includes('\\')) return 'it contains a backslash';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'it contains a control character';
  for (const segment of key.split('/')) {
    if (segment === '') return 'it has an empty path segment ("//" or a trailing "/")';
    if (segment === '..' || segment === '.') return `it has a "${segment}" segment`;
  }
  return undefined;
}
