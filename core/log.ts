import pino, { type Logger } from 'pino';

export type { Logger };

/** Paths that may hold a secret; pino replaces them with "[redacted]" in every log line. */
const REDACT = [
  'password',
  'token',
  'secret',
  'authorization',
  'cookie',
  '*.password',
  '*.token',
  '*.secret',
  '*.apiKey',
  '*.authorization',
  '*.cookie',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** How log lines look: `auto` picks pretty on a terminal outside production, JSON otherwise. */
export type LogFormat = 'auto' | 'pretty' | 'json';

/** Where and how a logger without an explicit destination writes. */
export interface LogOutput {
  format?: LogFormat;
  /** Whether stdout is a terminal (default: process.stdout.isTTY). */
  isTTY?: boolean;
  /** NODE_ENV=production (default: read from the environment). */
  production?: boolean;
  /** Where pretty lines go: a file path or a file descriptor (default 1, stdout). */
  prettyTo?: string | number;
}

/** The format a logger writes: JSON when piped, in production or when asked; readable lines on a terminal. */
export function chooseLogFormat(o: {
  format: LogFormat;
  isTTY: boolean;
  production: boolean;
}): 'pretty' | 'json' {
  if (o.format !== 'auto') return o.format;
  return o.isTTY && !o.production ? 'pretty' : 'json';
}

/**
 * Creates the structured logger; secrets never reach the output (redaction runs before any
 * formatting). Pretty lines come from pino-pretty in pino's transport worker, loaded only then.
 */
export function createLogger(
  level: string = 'info',
  destination?: pino.DestinationStream,
  output: LogOutput = {},
): Logger {
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { app: 'visioninapp' } };
  const format =
    destination !== undefined
      ? 'json'
      : chooseLogFormat({
          format: output.format ?? 'auto',
          isTTY: output.isTTY ?? process.stdout.isTTY === true,
          production: output.production ?? process.env.NODE_ENV === 'production',
        });
  if (format === 'json') return pino(options, destination);
  const pretty = pino.transport({
    target: 'pino-pretty',
    options: {
      destination: output.prettyTo ?? 1,
      colorize: output.prettyTo === undefined,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,app',
      sync: typeof output.prettyTo === 'string',
    },
  }) as pino.DestinationStream;
  return pino(options, pretty);
}

/** A logger that drops everything, for tests and tools that run quietly. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
