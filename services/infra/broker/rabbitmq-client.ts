import type { Logger } from '../../../core/log.js';

/** How long one call to the RabbitMQ server may take. */
export const CALL_TIMEOUT_MS = 10_000;

/** Rejects when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A client error as text (the client rejects with bare response codes). */
export function describe(err: unknown): string {
  return err instanceof Error
    ? err.message
    : typeof err === 'number'
      ? `server response code ${err}`
      : String(err);
}

/** True when a `major.minor…` version is at least `major.minor`. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

/** The client's own logger, turned down to debug (its warnings repeat what the adapter says itself). */
export function quietLogger(log: Logger): {
  debug(m: string): void;
  info(m: string): void;
  warn(m: string): void;
  error(m: string): void;
} {
  const debug = (message: string) => log.debug({ component: 'rabbitmq-stream-js-client' }, message);
  return { debug, info: debug, warn: debug, error: debug };
}
