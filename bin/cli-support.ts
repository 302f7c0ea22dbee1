import { ConfigError, loadConfig, type Config } from '../app/config.js';
import { isPlatformError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';

/** Exit codes: 1 = a command failed, 2 = bad configuration or usage. */
export const EXIT_FAILED = 1;
export const EXIT_CONFIG = 2;

/** The validated configuration; a bad value ends the process with one line and exit code 2. */
export function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`visioninapp: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

/** Prints one line and exits with code 1. */
export function fail(err: unknown): never {
  const message = isPlatformError(err) || err instanceof Error ? err.message : String(err);
  process.stderr.write(`visioninapp: ${message}\n`);
  process.exit(EXIT_FAILED);
}

/** Runs a command body with a logger, turning any error into one line and exit code 1. */
export function action<A extends unknown[]>(body: (cfg: Config, log: Logger, ...args: A) => Promise<void>) {
  return async (...args: A) => {
    const cfg = config();
    const log = createLogger(cfg.LOG_LEVEL, undefined, { format: cfg.LOG_FORMAT });
    try {
      await body(cfg, log, ...args);
    } catch (err) {
      fail(err);
    }
  };
}
