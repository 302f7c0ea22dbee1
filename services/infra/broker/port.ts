import type { Health } from '../health.js';
import type { Envelope } from '../../../protocol/envelope.js';

/** The two streams of the original design. */
export const STREAMS = {
  /** Stream B: platform → workers (train.start, train.cancel, deploy.apply, deploy.rollback, notify). */
  control: 'vision.control',
  /** Stream A: workers → platform (train.*, artifact.ready, runner.*, device.*, feedback.sample). */
  telemetry: 'vision.telemetry',
} as const;
export type StreamName = (typeof STREAMS)[keyof typeof STREAMS];

/**
 * How much each stream keeps (RABBITMQ_STREAM_MAX_AGE, RABBITMQ_STREAM_MAX_BYTES,
 * RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES). Messages go in whole segments, oldest first, once the
 * stream is older or larger than this: a stream holds at most about maxBytes + one segment.
 */
export interface StreamRetention {
  /** RabbitMQ's `max-age` form: a whole number and a unit, Y M D h m s (e.g. `7D`, `12h`). */
  maxAge: string;
  maxBytes: number;
  maxSegmentSizeBytes: number;
}

/** The bounds when nothing is configured: 7 days, 10 GB, 500 MB segments (RabbitMQ's segment default). */
export const DEFAULT_RETENTION: StreamRetention = {
  maxAge: '7D',
  maxBytes: 10_000_000_000,
  maxSegmentSizeBytes: 500_000_000,
};

const AGE_UNIT_MS = {
  Y: 365 * 86_400_000,
  M: 30 * 86_400_000,
  D: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
};

/** Milliseconds of a `max-age` such as `7D`; undefined when it is not one (units Y M D h m s, as RabbitMQ reads them). */
export function maxAgeMs(text: string): number | undefined {
  const m = /^([1-9]\d{0,8})(Y|M|D|h|m|s)$/.exec(text);
  if (m === null) return undefined;
  return Number(m[1]) * AGE_UNIT_MS[m[2] as keyof typeof AGE_UNIT_MS];
}

/** A named consumer's stored offset is older than the stream still keeps: it resumed further on. */
export interface RetentionGap {
  stream: StreamName;
  consumer: string;
  /** The offset it would have read next. */
  expected: number;
  /** The first offset it was given (the oldest retained message, or later). */
  resumedAt: number;
}

/** The one warning line of a retention gap (both adapters). */
export function retentionGapWarning(gap: RetentionGap, bounds: StreamRetention): string {
  return `consumer "${gap.consumer}" on ${gap.stream} resumed at offset ${gap.resumedAt}: ${gap.resumedAt - gap.expected} message(s) from offset ${gap.expected} were dropped by retention (RABBITMQ_STREAM_MAX_AGE ${bounds.maxAge}, RABBITMQ_STREAM_MAX_BYTES ${bounds.maxBytes}) before it read them; jobs and rollouts in flight are reconciled from the database (raise the bounds if this repeats)`;
}

/** Where a subscription starts when it has no stored offset. */
export type StartFrom = 'first' | 'next' | { offset: number };

export interface SubscribeOptions {
  /**
   * A named consumer stores its offset and resumes after the last message it handled, across
   * restarts. Unnamed consumers start at `from` every time.
   */
  name?: string;
  /** Start position when no offset is stored (default `next`). */
  from?: StartFrom;
  /** Single active consumer: among consumers with the same name, one receives at a time. */
  singleActive?: boolean;
}

/** Handles one valid envelope. Throwing logs the error and moves on (the offset still advances). */
export type MessageHandler = (
  envelope: Envelope,
  meta: { offset: number; stream: StreamName },
) => Promise<void> | void;

export interface Subscription {
  close(): Promise<void>;
}

/**
 * The broker port: in-process streams (embedded) or RabbitMQ Streams. Adapters validate every
 * envelope (invalid ones are logged with their offset and skipped), drop duplicates by envelope id,
 * store named consumers' offsets, and reconnect on their own.
 */
export interface Broker {
  readonly adapter: 'memory' | 'rabbitmq';
  /** Resolves once the broker confirmed the message. */
  publish(stream: StreamName, envelope: Envelope): Promise<void>;
  subscribe(stream: StreamName, opts: SubscribeOptions, handler: MessageHandler): Promise<Subscription>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
