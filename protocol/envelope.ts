import { randomUUID } from 'node:crypto';
import { z } from 'zod';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a hex sha256');
const metricsRecord = z.record(z.string(), z.number());

/** Built-in detector backends a runner can advertise. */
export const TRAIN_BACKENDS = ['builtin', 'ultralytics', 'yolox'] as const;
export type TrainBackend = (typeof TRAIN_BACKENDS)[number];

/** Output layouts of ONNX detectors the platform decodes. */
export const OUTPUT_LAYOUTS = ['ultralytics', 'end2end', 'yolox'] as const;
export type OutputLayout = (typeof OUTPUT_LAYOUTS)[number];

/** Training configuration sent to a runner. */
export const trainConfigSchema = z.object({
  backend: z.enum(TRAIN_BACKENDS),
  model: z.string().min(1).max(100),
  epochs: z.number().int().min(1).max(1000),
  imgsz: z.number().int().min(32).max(2048),
  batch: z.number().int().min(1).max(1024),
  lr: z.number().positive().optional(),
  seed: z.number().int().optional(),
  /** Extra backend-specific options. */
  extra: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  /** The model version whose weights training starts from (fine-tuning); absent = from scratch. */
  from: z.object({ versionId: z.string(), ref: z.string() }).optional(),
});
export type TrainConfig = z.infer<typeof trainConfigSchema>;

/** One file of a dataset version, downloadable through a signed URL. */
const datasetFileSchema = z.object({
  /** Relative path inside the YOLO layout, e.g. `images/train/abc.jpg`, `labels/train/abc.txt`. */
  path: z.string().min(1),
  url: z.string().url(),
  sha256,
  size: z.number().int().nonnegative(),
});

const artifactSchema = z.object({
  /** e.g. `model.onnx`, `metrics.json`, `results.csv`, `report.md`, `train.log`. */
  name: z.string().min(1),
  key: z.string().min(1),
  sha256,
  size: z.number().int().nonnegative(),
});

/** Every message type on the two streams, as a discriminated union on `type`. */
export const messageSchemas = {
  // ---- vision.control (platform → workers)
  'train.start': z.object({
    jobId: z.string(),
    attempt: z.number().int().min(1),
    runnerId: z.string(),
    config: trainConfigSchema,
    dataset: z.object({
      name: z.string(),
      version: z.number().int(),
      classNames: z.array(z.string()).min(1),
      /** Every image and label file of the version, in YOLO layout with train/val/test splits. */
      files: z.array(datasetFileSchema),
    }),
    /** Presigned PUT URLs for each artifact name the runner uploads, with the storage key behind each. */
    uploads: z.record(z.string(), z.object({ url: z.string().url(), key: z.string() })),
    /** For fine-tuning: the checkpoint of `config.from` to start from, with the classes it was trained on. */
    init: z
      .object({
        ref: z.string(),
        url: z.string().url(),
        sha256,
        size: z.number().int().nonnegative(),
        classNames: z.array(z.string()).min(1),
      })
      .optional(),
  }),
  'train.cancel': z.object({
    jobId: z.string(),
    attempt: z.number().int().min(1),
    reason: z.string().optional(),
  }),
  'deploy.apply': z.object({
    deploymentId: z.string(),
    rolloutId: z.string(),
    deviceId: z.string(),
    model: z.object({
      versionId: z.string(),
      name: z.string(),
      version: z.number().int(),
      url: z.string().url(),
      sha256,
      size: z.number().int().nonnegative(),
      layout: z.enum(OUTPUT_LAYOUTS),
      inputSize: z.number().int().positive(),
      classNames: z.array(z.string()),
    }),
  }),
  'deploy.rollback': z.object({
    deploymentId: z.string(),
    rolloutId: z.string(),
    deviceId: z.string(),
    reason: z.string(),
  }),
  notify: z.object({
    level: z.enum(['info', 'warn', 'error']),
    text: z.string(),
    ref: z.string().optional(),
  }),
  /**
   * The platform may have missed telemetry (a consumer fell behind stream retention): each runner and
   * device named here reports again what it knows of the job or deployment (its last status, its
   * outcome), re-sending the same envelopes when it kept them, so duplicates are dropped by id.
   */
  'status.request': z.object({
    reason: z.string(),
    jobs: z.array(z.object({ jobId: z.string(), attempt: z.number().int().min(1), runnerId: z.string() })),
    deployments: z.array(z.object({ deploymentId: z.string(), rolloutId: z.string(), deviceId: z.string() })),
  }),

  // ---- vision.telemetry (workers → platform)
  'runner.heartbeat': z.object({
    runnerId: z.string(),
    backends: z.array(z.enum(TRAIN_BACKENDS)),
    device: z.object({ kind: z.enum(['cpu', 'cuda']), name: z.string(), memoryMb: z.number().optional() }),
    busyJobId: z.string().optional(),
    version: z.string().optional(),
  }),
  'train.status': z.object({
    jobId: z.string(),
    attempt: z.number().int().min(1),
    runnerId: z.string(),
    status: z.enum(['claimed', 'running', 'succeeded', 'failed', 'cancelled']),
    message: z.string().optional(),
  }),
  'train.log': z.object({
    jobId: z.string(),
    attempt: z.number().int().min(1),
    /** Sequence number of this batch of lines within the attempt, from 0. */
    seq: z.number().int().nonnegative(),
    lines: z.array(z.string()),
  }),
  'train.metrics': z.object({
    jobId: z.string(),
    attempt: z.number().int().min(1),
    epoch: z.number().int().min(0),
    epochs: z.number().int().min(1),
    /** `progress` within an epoch (batch/batches), `epoch` once an epoch ends with its validation. */
    kind: z.enum(['progress', 'epoch']),
    batch: z.number().int().nonnegative().optional(),
    batches: z.number().int().positive().optional(),
    /** e.g. box_loss, cls_loss, dfl_loss, mAP50, mAP50_95, precision, recall, lr, seconds. */
    metrics: metricsRecord,
  }),
  'artifact.ready': z.object({
    jobId: z.string(),
    attempt: z.number().int().min(1),
    runnerId: z.string(),
    artifacts: z.array(artifactSchema).min(1),
    model: z.object({
      layout: z.enum(OUTPUT_LAYOUTS),
      inputSize: z.number().int().positive(),
      classNames: z.array(z.string()),
    }),
    metrics: metricsRecord,
    perClass: z.record(z.string(), metricsRecord).optional(),
    codeVersion: z.string().optional(),
  }),
  'device.heartbeat': z.object({
    deviceId: z.string(),
    name: z.string(),
    tags: z.array(z.string()),
    hardware: z.string(),
    runtime: z.record(z.string(), z.string()),
    provider: z.string(),
    modelVersionId: z.string().nullable(),
    previousModelVersionId: z.string().nullable().optional(),
    state: z.enum(['idle', 'serving', 'loading', 'building', 'error']),
    fps: z.number().nonnegative(),
    latencyP50Ms: z.number().nonnegative(),
    latencyP95Ms: z.number().nonnegative(),
    meanTopConfidence: z.number().min(0).max(1).nullable(),
    cpuPercent: z.number().nonnegative(),
    memoryMb: z.number().nonnegative(),
    temperatureC: z.number().nullable(),
    /** Progress of a TensorRT engine build or model download, 0..1. */
    buildProgress: z.number().min(0).max(1).optional(),
  }),
  'device.health': z.object({
    deviceId: z.string(),
    deploymentId: z.string(),
    rolloutId: z.string(),
    modelVersionId: z.string(),
    state: z.enum(['downloading', 'verifying', 'loading', 'healthy', 'failed', 'rolled_back']),
    message: z.string().optional(),
    latencyP95Ms: z.number().nonnegative().optional(),
    meanTopConfidence: z.number().min(0).max(1).nullable().optional(),
  }),
  'feedback.sample': z.object({
    deviceId: z.string(),
    modelVersionId: z.string().nullable(),
    imageKey: z.string(),
    sha256,
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    reason: z.enum(['low_confidence', 'disagreement', 'manual']),
    predictions: z.array(
      z.object({
        box: z.tuple([z.number(), z.number(), z.number(), z.number()]),
        classId: z.number().int().nonnegative(),
        className: z.string(),
        score: z.number().min(0).max(1),
      }),
    ),
    capturedAt: z.number().int(),
  }),
} as const;

export type MessageType = keyof typeof messageSchemas;
export type MessagePayload<T extends MessageType> = z.infer<(typeof messageSchemas)[T]>;

/** The wire envelope of every broker message. */
export const envelopeSchema = z.object({
  id: z.string().min(1).max(128),
  type: z.string().min(1).max(64),
  ts: z.string().datetime(),
  source: z.string().min(1).max(128),
  target: z.string().max(128).optional(),
  payload: z.unknown(),
});
export type Envelope<P = unknown> = Omit<z.infer<typeof envelopeSchema>, 'payload'> & { payload: P };

/** A validated, typed message: the envelope narrowed by its `type`. */
export type Message = { [T in MessageType]: Envelope<MessagePayload<T>> & { type: T } }[MessageType];

/** Builds an envelope with a fresh id and timestamp. */
export function makeEnvelope<T extends MessageType>(
  type: T,
  payload: MessagePayload<T>,
  opts: { source: string; target?: string; id?: string },
): Envelope<MessagePayload<T>> & { type: T } {
  return {
    id: opts.id ?? randomUUID(),
    type,
    ts: new Date().toISOString(),
    source: opts.source,
    ...(opts.target === undefined ? {} : { target: opts.target }),
    payload,
  };
}

/** Result of checking untrusted bytes or objects against the contract. */
export type ParseResult = { ok: true; message: Message } | { ok: false; error: string };

/** Validates an envelope and its payload for known types; unknown types are an error. */
export function parseMessage(input: unknown): ParseResult {
  const env = envelopeSchema.safeParse(input);
  if (!env.success)
    return {
      ok: false,
      error: `invalid envelope: ${env.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  // own keys only: a type such as "constructor" or "__proto__" must not reach Object.prototype
  const schema = Object.hasOwn(messageSchemas, env.data.type)
    ? (messageSchemas as Record<string, z.ZodType>)[env.data.type]
    : undefined;
  if (schema === undefined) return { ok: false, error: `unknown message type "${env.data.type}"` };
  const payload = schema.safeParse(env.data.payload);
  if (!payload.success)
    return {
      ok: false,
      error: `invalid ${env.data.type} payload: ${payload.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  return { ok: true, message: { ...env.data, payload: payload.data } as Message };
}

/** Parses JSON bytes from the wire; never throws. */
export function decodeMessage(bytes: Buffer | string): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  return parseMessage(json);
}
