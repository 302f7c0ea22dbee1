import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { DEFAULT_RETENTION, maxAgeMs } from '../services/infra/broker/port.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const optionalUrl = (protocols: string[]) =>
  z
    .string()
    .refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol);
        } catch {
          return false;
        }
      },
      `a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    )
    .optional();

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/** A size in bytes: a whole number, optionally with a unit (KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024). */
const byteSize = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(String(v));
  const unit = BYTE_UNITS[(m?.[2] ?? '').toUpperCase()];
  const bytes = m === null || unit === undefined ? NaN : Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    ctx.addIssue({ code: 'custom', message: 'a size like 10GB, 500MB or a number of bytes' });
    return z.NEVER;
  }
  return bytes;
});

/** Every environment variable the platform reads, with its embedded default and expected form. */
export const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080).describe('HTTP port of the platform server'),
  HOST: z.string().min(1).default('127.0.0.1').describe('interface the HTTP server binds'),
  PUBLIC_URL: optionalUrl(['http:', 'https:']).describe('URL people and devices use to reach the server'),
  DATA_DIR: z.string().min(1).default('./data').describe('folder for everything the embedded adapters keep'),
  IMPORT_ROOTS: z
    .string()
    .min(1)
    .optional()
    .describe(
      'comma-separated folders dataset imports may read (default DATA_DIR/imports); DATA_DIR/demo is always readable',
    ),
  EXPORT_ROOTS: z
    .string()
    .min(1)
    .optional()
    .describe('comma-separated folders dataset exports may write (default DATA_DIR/exports)'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z
    .enum(['auto', 'pretty', 'json'])
    .default('auto')
    .describe(
      'auto: readable lines on a terminal (not with NODE_ENV=production), JSON when piped; or force one',
    ),
  DATABASE_URL: optionalUrl(['mysql:']).describe(
    'mysql://user:pass@host:3306/db; SQLite under DATA_DIR when unset',
  ),
  REDIS_URL: optionalUrl(['redis:', 'rediss:']).describe('redis://host:6379; in-memory cache when unset'),
  ELASTICSEARCH_URL: optionalUrl(['http:', 'https:']).describe(
    'http://host:9200; embedded MiniSearch when unset',
  ),
  ELASTICSEARCH_INDEX_PREFIX: z
    .string()
    .regex(/^[a-z0-9_-]+$/)
    .default('visioninapp'),
  RABBITMQ_STREAM_URL: optionalUrl(['rabbitmq-stream:']).describe(
    'rabbitmq-stream://user:pass@host:5552/vhost; in-process broker when unset',
  ),
  RABBITMQ_STREAM_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, ".", "_" or "-"')
    .optional()
    .describe('prefix of the stream names, so several environments (or test runs) share one RabbitMQ'),
  RABBITMQ_STREAM_MAX_AGE: z
    .string()
    .refine(
      (v) => maxAgeMs(v) !== undefined,
      'a duration like 7D, 12h, 30m or 3600s (units Y, M, D, h, m, s, as RabbitMQ reads max-age)',
    )
    .default(DEFAULT_RETENTION.maxAge)
    .describe(
      'streams (RabbitMQ and the in-process broker) drop messages older than this, a segment at a time',
    ),
  RABBITMQ_STREAM_MAX_BYTES: byteSize
    .default(DEFAULT_RETENTION.maxBytes)
    .describe('streams drop their oldest segments beyond this size, e.g. 10GB or 500MB'),
  RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES: byteSize
    .default(DEFAULT_RETENTION.maxSegmentSizeBytes)
    .describe('size of one stream segment, the unit retention drops (RabbitMQ default 500MB)'),
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')
    .optional(),
  S3_ENDPOINT: optionalUrl(['http:', 'https:']),
  S3_REGION: z.string().default('us-east-1'),
  S3_FORCE_PATH_STYLE: bool.default(false),
  FIREBASE_PROJECT_ID: z
    .string()
    .regex(/^[a-z0-9-]+$/, 'a Firebase project id')
    .optional(),
  FIREBASE_API_KEY: z
    .string()
    .regex(/^[A-Za-z0-9_-]{10,100}$/, 'the Web API key of the Firebase project')
    .optional()
    .describe('Web API key the sign-in page gives the Firebase Web SDK'),
  FIREBASE_AUTH_DOMAIN: z
    .string()
    .regex(/^[a-z0-9.-]+(:\d+)?$/, 'a host name such as my-project.firebaseapp.com')
    .optional()
    .describe('authDomain of the Firebase Web SDK; default <FIREBASE_PROJECT_ID>.firebaseapp.com'),
  FIREBASE_AUTH_EMULATOR_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.-]+:\d+$/, 'host:port of the Firebase Auth emulator')
    .optional()
    .describe('Firebase Auth emulator (development): firebase-admin and the sign-in page both talk to it'),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: optionalUrl(['http:', 'https:']),
  LLM_MODEL: z.string().min(1).default('gpt-4o-mini'),
  LLM_TIMEOUT_S: z.coerce
    .number()
    .positive()
    .max(600)
    .default(60)
    .describe('seconds one LLM request may take'),
  LLM_MAX_RETRIES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10)
    .default(2)
    .describe('retries of a failed LLM request, with backoff'),
  APPROVAL_STRICT: bool.default(false),
  APPROVAL_MODE: z.enum(['mutating', 'every-step']).default('mutating'),
  APPROVAL_TTL_HOURS: z.coerce.number().positive().default(24),
  SIGNING_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  AUDIT_KEY: z
    .string()
    .regex(/^[A-Za-z0-9_+/=.-]{32,}$/, 'at least 32 letters, digits or _+/=.-')
    .optional()
    .describe(
      'HMAC key of the audit log (entries, chain head, checkpoints); generated once into DATA_DIR/audit-key when unset; set the same on every instance sharing a database',
    ),
  AUDIT_KEYS: z
    .string()
    .regex(
      /^\s*[A-Za-z0-9_+/=.-]{32,}\s*(,\s*[A-Za-z0-9_+/=.-]{32,}\s*)*$/,
      'a comma-separated list of keys of at least 32 characters',
    )
    .transform((v) => v.split(',').map((k) => k.trim()))
    .optional()
    .describe(
      'retired audit keys, comma-separated, kept so entries they signed stay verifiable after AUDIT_KEY is rotated',
    ),
  AUDIT_CHECKPOINT_EVERY: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(20)
    .describe('a signed audit checkpoint after this many entries of a project'),
  AUDIT_CHECKPOINT_MINUTES: z.coerce
    .number()
    .min(0.05)
    .max(1440)
    .default(5)
    .describe('... and at least this often while entries arrive (and at shutdown)'),
  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  SLACK_WEBHOOK_URL: optionalUrl(['http:', 'https:']),
  SLACK_USER_MAP: z
    .string()
    .regex(
      /^\s*[A-Za-z0-9_]+\s*=\s*[^\s,=]+@[^\s,=]+\s*(,\s*[A-Za-z0-9_]+\s*=\s*[^\s,=]+@[^\s,=]+\s*)*$/,
      'a list like "U123ABC=alice@example.com,U456DEF=bob@example.com"',
    )
    .optional()
    .describe('Slack (or Mattermost) user id to platform account email'),
  MATTERMOST_COMMAND_TOKEN: z
    .string()
    .min(8)
    .optional()
    .describe('token Mattermost sends with the /vision slash command'),
  CHAT_LINK_CODE_TTL_MIN: z.coerce
    .number()
    .int()
    .min(1)
    .max(60)
    .default(10)
    .describe('minutes a "/vision link" code can be confirmed in the web app (it works once)'),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  EMBEDDED_GPU_RUNNER: bool.default(true),
  SIMULATED_DEVICES: z.coerce.number().int().min(0).max(100).default(3),
  DEMO_DATASET: bool.default(true),
  DEMO_PROFILE: z
    .enum(['full', 'tiny'])
    .default('full')
    .describe(
      'size of the demo: full (1,400 images at 320 px, starter model 3 epochs) or tiny (40 images at 96 px, starter model 1 epoch) for a quick look or CI',
    ),
  SIMULATED_DEVICE_HEARTBEAT_S: z.coerce
    .number()
    .min(0.2)
    .max(600)
    .default(5)
    .describe('heartbeat interval of the simulated devices'),
  ROLLOUT_HEALTH_TIMEOUT_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(86_400)
    .default(600)
    .describe('default gate: a device must report the model healthy within this time'),
  ROLLOUT_MIN_HEARTBEATS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(3)
    .describe('default gate: heartbeats on the new model the confidence and latency gates wait for'),
  ROLLOUT_CONFIDENCE_MARGIN: z
    .union([z.literal('off').transform(() => null), z.coerce.number().min(0).max(1)])
    .default(0.05)
    .describe(
      "default gate: the new model's mean top confidence may be at most this much below the previous model's, or off",
    ),
  ROLLOUT_OBSERVE_S: z.coerce
    .number()
    .int()
    .min(0)
    .max(86_400)
    .default(300)
    .describe('default gate: after this long healthy, the gates decide on the heartbeats seen so far'),
  TRAIN_PYTHON: z
    .string()
    .min(1)
    .optional()
    .describe('Python with torch + onnx + pillow; default /usr/bin/python3'),
  JOB_HEARTBEAT_TIMEOUT_S: z.coerce.number().positive().default(60),
  JOB_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(1),
  DEVICE_ONLINE_WINDOW_S: z.coerce
    .number()
    .positive()
    .default(30)
    .describe('a device is online while its last heartbeat is at most this old'),
  FEEDBACK_UPLOAD_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(100 * 1024 * 1024)
    .default(10 * 1024 * 1024)
    .describe(
      'largest feedback frame (JPEG, PNG or WebP) a device may upload through one signed URL, in bytes',
    ),
});

/** The validated configuration, built once and passed down explicitly. */
export type Config = z.infer<typeof configSchema>;

/** Variables whose value is a secret and is never printed. */
const SECRET_NAME = /SECRET|PASSWORD|TOKEN|API_KEY|CREDENTIAL|AUDIT_KEY/;

/** A configuration value that cannot be used; `message` is one line naming the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses `env` (plus `.env` in `cwd` when present, env wins) into a Config or throws one clear line. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const dotenvPath = path.join(cwd, '.env');
  const fromFile = existsSync(dotenvPath) ? parseDotenv(readFileSync(dotenvPath)) : {};
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...fromFile, ...env })) {
    if (value !== undefined && value !== '') merged[key] = value;
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = String(issue.path[0] ?? '(config)');
    // never echo a secret: a wrong API key or signing secret is still that secret
    const shown =
      merged[name] === undefined || SECRET_NAME.test(name) ? '' : ` (got "${redactUrl(merged[name])}")`;
    throw new ConfigError(`invalid ${name}${shown}: expected ${issue.message}`);
  }
  return result.data;
}

/** Hides the password in a URL so it can be printed. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return value;
  }
}
