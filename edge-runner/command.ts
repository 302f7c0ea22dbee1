import { createHmac } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { describeZodError, PlatformError } from '../core/errors.js';
import { createBroker } from '../services/infra/broker/index.js';
import type { Logger } from '../core/log.js';
import { EdgeRunner } from './edge-runner.js';
import type { FeedbackOptions } from './feedback.js';
import { providerListSchema } from './providers.js';
import { createFrameSource } from './sources/index.js';

const numberPair = z
  .union([z.string(), z.tuple([z.number(), z.number()])])
  .transform((v) => (typeof v === 'string' ? (v.split(',').map((x) => Number(x.trim())) as number[]) : v))
  .pipe(
    z
      .tuple([z.number().min(0).max(1), z.number().min(0).max(1)], {
        error: 'give two numbers between 0 and 1, e.g. 0.25,0.5',
      })
      .refine(([a, b]) => a < b, 'the low end must be below the high end, e.g. 0.25,0.5'),
  );

const csv = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((t) => t.trim()).filter((t) => t !== ''));

/** Options of `visioninapp edge-runner` (flags or VISIONINAPP_EDGE_* environment variables). */
export const edgeRunnerOptionsSchema = z.object({
  deviceId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'device id: 1-64 letters, digits, dots, dashes or underscores')
    .describe('unique device id, e.g. jetson-line3-01'),
  name: z.string().min(1).max(128).optional().describe('display name (default: the device id)'),
  tags: csv.default([]).describe('comma-separated group tags, e.g. line-3,site-a'),
  brokerUrl: z
    .string()
    .regex(/^rabbitmq-stream:\/\//, 'the broker URL must be rabbitmq-stream://user:pass@host:5552/vhost')
    .describe('RabbitMQ Streams URL of the platform broker'),
  streamPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'stream prefix: letters, digits, ".", "_" or "-"')
    .optional()
    .describe('prefix of the stream names, the same as the platform’s RABBITMQ_STREAM_PREFIX'),
  platformUrl: z
    .string()
    .url()
    .optional()
    .describe('platform base URL, used to ask for feedback upload URLs'),
  apiToken: z
    .string()
    .min(8)
    .optional()
    .describe('platform API token (Bearer) for the feedback upload URL route'),
  source: z
    .string()
    .min(1)
    .describe('frame source: folder:<dir>, http, or ffmpeg:<file|rtsp://…|/dev/video0>'),
  fps: z.coerce.number().min(0).max(240).default(10).describe('frame rate cap (0 = no cap)'),
  dataDir: z
    .string()
    .min(1)
    .default(path.join(os.homedir(), '.visioninapp-edge'))
    .describe('state, models, engine cache and offline buffers'),
  providers: providerListSchema
    .default(['cpu'])
    .describe('execution providers in order, e.g. tensorrt,cuda,cpu'),
  threads: z.coerce
    .number()
    .int()
    .min(0)
    .max(64)
    .default(0)
    .describe('onnxruntime intra-op threads (0 = default)'),
  httpPort: z.coerce.number().int().min(0).max(65535).default(8090).describe('device API port'),
  httpHost: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('device API bind address (0.0.0.0 to serve the network; the key is still required)'),
  apiKey: z
    .string()
    .min(16, 'the device API key needs at least 16 characters')
    .optional()
    .describe(
      'device API key (default: derived from the API token, else a random key in <data-dir>/device-api-key)',
    ),
  maxImagePixels: z.coerce
    .number()
    .int()
    .min(1)
    .max(268_402_689)
    .optional()
    .describe('largest image (width x height) the device decodes (default 40000000)'),
  uncertainBand: numberPair
    .default([0.25, 0.5])
    .describe('top confidence band sampled for feedback, e.g. 0.25,0.5'),
  feedbackPerMinute: z.coerce
    .number()
    .int()
    .min(0)
    .default(2)
    .describe('feedback samples per minute at most (0 = off)'),
  feedbackPerHour: z.coerce.number().int().min(0).default(30).describe('feedback samples per hour at most'),
  heartbeatSeconds: z.coerce.number().min(1).max(600).default(5).describe('heartbeat interval'),
  tensorrtVersion: z
    .string()
    .optional()
    .describe('TensorRT version for the engine cache key (default: from libnvinfer)'),
});
/** Raw (unparsed) options of the command. */
export type EdgeRunnerCommandOptions = z.input<typeof edgeRunnerOptionsSchema>;

const ENV: Record<string, keyof EdgeRunnerCommandOptions> = {
  VISIONINAPP_EDGE_DEVICE_ID: 'deviceId',
  VISIONINAPP_EDGE_NAME: 'name',
  VISIONINAPP_EDGE_TAGS: 'tags',
  RABBITMQ_STREAM_URL: 'brokerUrl',
  RABBITMQ_STREAM_PREFIX: 'streamPrefix',
  VISIONINAPP_PLATFORM_URL: 'platformUrl',
  VISIONINAPP_API_TOKEN: 'apiToken',
  VISIONINAPP_EDGE_SOURCE: 'source',
  VISIONINAPP_EDGE_FPS: 'fps',
  VISIONINAPP_EDGE_DATA_DIR: 'dataDir',
  VISIONINAPP_EDGE_PROVIDERS: 'providers',
  VISIONINAPP_EDGE_THREADS: 'threads',
  VISIONINAPP_EDGE_HTTP_PORT: 'httpPort',
  VISIONINAPP_EDGE_HTTP_HOST: 'httpHost',
  VISIONINAPP_EDGE_API_KEY: 'apiKey',
  VISIONINAPP_EDGE_MAX_IMAGE_PIXELS: 'maxImagePixels',
  VISIONINAPP_EDGE_UNCERTAIN_BAND: 'uncertainBand',
  VISIONINAPP_EDGE_FEEDBACK_PER_MINUTE: 'feedbackPerMinute',
  VISIONINAPP_EDGE_FEEDBACK_PER_HOUR: 'feedbackPerHour',
  VISIONINAPP_EDGE_HEARTBEAT_SECONDS: 'heartbeatSeconds',
  VISIONINAPP_EDGE_TENSORRT_VERSION: 'tensorrtVersion',
};

/** Reads the command's options from environment variables (`VISIONINAPP_EDGE_*`, `RABBITMQ_STREAM_URL`, …); flags override them. */
export function edgeOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<EdgeRunnerCommandOptions> {
  const out: Record<string, string> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out as Partial<EdgeRunnerCommandOptions>;
}

/**
 * The device API key that goes with a device's platform token: HMAC-SHA256 of a fixed label under the
 * token, so whoever holds the token can compute it, while the key (kept on the device for local
 * integrations) does not reveal the token.
 */
export function deviceApiKeyFromToken(apiToken: string): string {
  return createHmac('sha256', apiToken).update('visioninapp edge device API key v1').digest('base64url');
}

const uploadsSchema = z.object({
  uploads: z.array(z.object({ url: z.string().url(), key: z.string().min(1) })),
});

/**
 * Asks the platform for presigned feedback upload URLs:
 * `POST {platformUrl}/api/fleet/devices/{deviceId}/feedback-uploads` with `{ count }` and a Bearer token,
 * answered with `{ uploads: [{ url, key }] }`.
 */
export function httpUploadUrlRequester(opts: {
  platformUrl: string;
  apiToken?: string;
  deviceId: string;
}): FeedbackOptions['requestUploadUrls'] {
  const url = `${opts.platformUrl.replace(/\/+$/, '')}/api/fleet/devices/${encodeURIComponent(opts.deviceId)}/feedback-uploads`;
  return async (count) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(opts.apiToken ? { authorization: `Bearer ${opts.apiToken}` } : {}),
      },
      body: JSON.stringify({ count }),
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok)
      throw new PlatformError(
        res.status === 401 || res.status === 403 ? 'unauthenticated' : 'unavailable',
        `the platform refused feedback upload URLs (HTTP ${res.status}); check --platform-url and the API token`,
      );
    const parsed = uploadsSchema.safeParse(await res.json());
    if (!parsed.success)
      throw new PlatformError(
        'internal',
        `unexpected feedback upload answer from the platform: ${describeZodError(parsed.error)}`,
      );
    return parsed.data.uploads;
  };
}

/**
 * `visioninapp edge-runner`: validates the options, connects to the broker, starts an EdgeRunner
 * and runs until SIGTERM/SIGINT (or `signal`), then stops cleanly.
 */
export async function runEdgeRunnerCommand(
  input: EdgeRunnerCommandOptions,
  deps: { log: Logger; signal?: AbortSignal },
): Promise<void> {
  const parsed = edgeRunnerOptionsSchema.safeParse(input);
  if (!parsed.success)
    throw new PlatformError(
      'invalid_input',
      `invalid edge-runner options: ${describeZodError(parsed.error)}`,
    );
  const o = parsed.data;
  const log = deps.log.child({ component: 'edge-runner' });
  const broker = await createBroker({
    rabbitmqUrl: o.brokerUrl,
    log,
    ...(o.streamPrefix ? { streamPrefix: o.streamPrefix } : {}),
  });
  const source = createFrameSource(o.source, {
    maxFps: o.fps,
    log,
    ...(o.maxImagePixels === undefined ? {} : { maxPixels: o.maxImagePixels }),
  });
  const apiKey = o.apiKey ?? (o.apiToken === undefined ? undefined : deviceApiKeyFromToken(o.apiToken));
  const feedback: FeedbackOptions | undefined =
    o.platformUrl !== undefined && o.feedbackPerMinute > 0
      ? {
          perMinute: o.feedbackPerMinute,
          perHour: o.feedbackPerHour,
          requestUploadUrls: httpUploadUrlRequester({
            platformUrl: o.platformUrl,
            deviceId: o.deviceId,
            ...(o.apiToken ? { apiToken: o.apiToken } : {}),
          }),
        }
      : undefined;
  if (!feedback)
    log.info(
      'feedback sampling is off (set --platform-url and a non-zero --feedback-per-minute to enable it)',
    );
  const runner = new EdgeRunner({
    deviceId: o.deviceId,
    ...(o.name ? { name: o.name } : {}),
    tags: o.tags,
    broker,
    dataDir: path.resolve(o.dataDir),
    source,
    providers: o.providers,
    uncertainBand: o.uncertainBand,
    ...(feedback ? { feedback } : {}),
    httpPort: o.httpPort,
    httpHost: o.httpHost,
    ...(apiKey === undefined ? {} : { apiKey }),
    ...(o.maxImagePixels === undefined ? {} : { maxImagePixels: o.maxImagePixels }),
    heartbeatMs: o.heartbeatSeconds * 1000,
    ...(o.threads > 0 ? { threads: o.threads } : {}),
    ...(o.tensorrtVersion ? { tensorrtVersion: o.tensorrtVersion } : {}),
    log,
  });
  await runner.start();
  log.info(
    {
      deviceId: o.deviceId,
      tags: o.tags,
      source: source.description,
      api: runner.httpUrl,
      providers: o.providers,
    },
    'edge runner started',
  );
  await new Promise<void>((resolve) => {
    const done = () => {
      process.off('SIGTERM', done);
      process.off('SIGINT', done);
      resolve();
    };
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
    if (deps.signal?.aborted) done();
    deps.signal?.addEventListener('abort', done, { once: true });
  });
  log.info('stopping edge runner');
  await runner.stop();
  await broker.close();
}
