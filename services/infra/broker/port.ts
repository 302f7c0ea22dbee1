import type { Health } from '../health.js';
import type { Envelope } from './envelope.js';

/** The two streams of the original design. */
export const STREAMS = {
  /** Stream B: platform → workers (train.start, train.cancel, deploy.apply, deploy.rollback, notify). */
  control: 'vision.control',
  /** Stream A: workers → platform (train.*, artifact.ready, runner.*, device.*, feedback.sample). */
  telemetry: 'vision.telemetry',
} as const;
export type StreamName = (typeof STREAMS)[keyof typeof STREAMS];

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
export type MessageHandler = (envelope: Envelope, meta: { offset: number; stream: StreamName }) => Promise<void> | void;

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
