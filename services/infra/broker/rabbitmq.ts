import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connect, Offset, type Client } from 'rabbitmq-stream-js-client';
import { PlatformError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/log.js';
import { retry } from '../../../core/retry.js';
import type { Health } from '../health.js';
import { ConsumerSet, groupKey } from './consumers.js';
import { parseMessage, type Envelope } from '../../../protocol/envelope.js';
import {
  DEFAULT_RETENTION,
  STREAMS,
  type Broker,
  type MessageHandler,
  type RetentionGap,
  type StreamName,
  type StreamRetention,
  type SubscribeOptions,
  type Subscription,
} from './port.js';
import { CALL_TIMEOUT_MS, describe, quietLogger, versionAtLeast, withTimeout } from './rabbitmq-client.js';
import { RabbitSubscription } from './rabbitmq-consumer.js';
import { RabbitProducers, type ProducerHost } from './rabbitmq-producer.js';

/** Options of the RabbitMQ Streams adapter. */
export interface RabbitBrokerOptions {
  /** `rabbitmq-stream://user:password@host:5552/vhost` (RABBITMQ_STREAM_URL). */
  url: string;
  log?: Logger;
  /** Prefix of the stream names on the server, so tests can use their own streams. */
  streamPrefix?: string;
  /** Producer name for de-duplication; keep it stable across restarts of one producer, unique among producers. */
  publisherRef?: string;
  /** How long a publish waits for a confirm (including an outage) before failing as unavailable. */
  publishTimeoutMs?: number;
  /** Recent envelope ids each subscription remembers to drop duplicates. */
  dedupeWindow?: number;
  /** Retention arguments each stream is declared with (default 7 days, 10 GB, 500 MB segments). */
  bounds?: StreamRetention;
  /** Called (besides a warning) when a named consumer's stored offset fell behind retention. */
  onRetentionGap?: (gap: RetentionGap) => void;
}

const NO_OFFSET = 19;
/** The server's answer to a declare whose arguments differ from the existing stream's. */
const PRECONDITION_FAILED = 17;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 3000;

/**
 * The broker port over RabbitMQ Streams (rabbitmq-stream-js-client): confirmed, de-duplicated
 * publishing, offset-tracked named consumers, single active consumers, and reconnection after the
 * server restarts with consumers resuming after the last message they handled.
 */
export class RabbitBroker implements Broker, ProducerHost {
  readonly adapter = 'rabbitmq' as const;
  private readonly log: Logger;
  private readonly params: {
    hostname: string;
    port: number;
    username: string;
    password: string;
    vhost: string;
  };
  private readonly prefix: string;
  private readonly bounds: StreamRetention;
  /** Streams whose differing arguments were already reported (once per process, not per reconnect). */
  private readonly mismatchReported = new Set<string>();
  private readonly producers: RabbitProducers;
  private readonly consumers: ConsumerSet<RabbitSubscription>;
  private readonly storedOffsets = new Map<string, number>();
  private client: Client | undefined;
  private generation = 0;
  private connecting: Promise<Client> | undefined;
  private lastError: string | undefined;
  private closed = false;

  constructor(opts: RabbitBrokerOptions) {
    const u = new URL(opts.url);
    const vhostPath = decodeURIComponent(u.pathname.replace(/^\//, ''));
    this.params = {
      hostname: u.hostname,
      port: Number(u.port || 5552),
      username: decodeURIComponent(u.username || 'guest'),
      password: decodeURIComponent(u.password || 'guest'),
      vhost: vhostPath === '' ? '/' : vhostPath,
    };
    this.log = opts.log ?? silentLogger();
    this.prefix = opts.streamPrefix ?? '';
    this.producers = new RabbitProducers(this, {
      log: this.log,
      publisherRef:
        opts.publisherRef ?? `visioninapp-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
      publishTimeoutMs: opts.publishTimeoutMs ?? 30_000,
    });
    this.bounds = opts.bounds ?? DEFAULT_RETENTION;
    this.consumers = new ConsumerSet({
      log: this.log,
      dedupeWindow: opts.dedupeWindow,
      bounds: this.bounds,
      onRetentionGap: opts.onRetentionGap,
    });
  }

  /** The retention arguments streams are declared with. */
  streamRetention(): StreamRetention {
    return { ...this.bounds };
  }

  /** The stream's name on the server. */
  serverStream(stream: StreamName): string {
    return `${this.prefix}${stream}`;
  }

  /** Validates, sends with a publishing id, and resolves on the server's confirm (retrying across reconnects). */
  publish(stream: StreamName, envelope: Envelope): Promise<void> {
    if (this.closed)
      return Promise.reject(new PlatformError('unavailable', 'the RabbitMQ broker adapter is closed'));
    const checked = parseMessage(envelope);
    if (!checked.ok)
      return Promise.reject(
        new PlatformError(
          'invalid_input',
          `cannot publish to ${stream}: ${checked.error}; build messages with makeEnvelope()`,
        ),
      );
    return this.producers.publish(stream, Buffer.from(JSON.stringify(envelope)));
  }

  async subscribe(
    stream: StreamName,
    opts: SubscribeOptions,
    handler: MessageHandler,
  ): Promise<Subscription> {
    if (this.closed) throw new PlatformError('unavailable', 'the RabbitMQ broker adapter is closed');
    const { sub, active } = this.consumers.add(
      stream,
      opts,
      handler,
      (delivery) => new RabbitSubscription(this, stream, opts, delivery),
    );
    if (active) {
      const client = await this.ensureConnected();
      const gen = this.generation;
      try {
        await sub.activate(client, gen);
      } catch (err) {
        // A connection lost meanwhile is not fatal: the reconnect declares every active subscription again.
        if (gen === this.generation) {
          await sub.close();
          throw this.unavailable(`could not subscribe to ${stream}: ${describe(err)}`);
        }
      }
    }
    return sub;
  }

  async health(): Promise<Health> {
    if (this.client !== undefined && !this.closed) return { port: 'broker', adapter: 'rabbitmq', ok: true };
    if (!this.closed) this.ensureConnected().catch(() => undefined);
    return {
      port: 'broker',
      adapter: 'rabbitmq',
      ok: false,
      detail: this.closed
        ? 'closed'
        : `RabbitMQ streams not reachable at ${this.params.hostname}:${this.params.port} (RABBITMQ_STREAM_URL)${this.lastError ? `: ${this.lastError}` : ''}`,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.consumers.values().map((s) => s.close()));
    const deadline = Date.now() + 5000;
    while (this.producers.waiting() > 0 && Date.now() < deadline && this.client !== undefined) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.closed = true;
    this.producers.failAll(
      () =>
        new PlatformError(
          'unavailable',
          'the RabbitMQ broker adapter closed before the message was confirmed',
        ),
    );
    const client = this.client;
    this.client = undefined;
    this.generation++;
    if (client !== undefined)
      await withTimeout(client.close(), 5000, 'closing the RabbitMQ client').catch((err) =>
        this.log.debug({ err }, 'RabbitMQ client close failed'),
      );
  }

  /** @internal The connected client, if any, and its generation. */
  connection(): { client: Client | undefined; generation: number } {
    return { client: this.client, generation: this.generation };
  }

  /** @internal The connected client, connecting (with retries) when needed. */
  ensureConnected(): Promise<Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    if (this.closed)
      return Promise.reject(new PlatformError('unavailable', 'the RabbitMQ broker adapter is closed'));
    this.connecting ??= this.connectLoop().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** @internal Called by any connection of the current generation that closed. */
  connectionLost(gen: number, what: string): void {
    if (gen !== this.generation || this.closed || this.client === undefined) return;
    this.log.warn(
      { what, host: this.params.hostname, port: this.params.port },
      'RabbitMQ stream connection lost; reconnecting (RABBITMQ_STREAM_URL)',
    );
    const old = this.client;
    this.client = undefined;
    this.generation++;
    this.producers.connectionLost();
    for (const sub of this.consumers.values()) sub.detachConsumer();
    withTimeout(old.close(), 2000, 'closing the lost RabbitMQ client').catch(() => undefined);
    this.ensureConnected().catch((err) => this.log.error({ err }, 'RabbitMQ reconnect stopped'));
  }

  /** @internal Stored offset of a named consumer (server or this process, whichever is later). */
  async storedOffset(client: Client, stream: StreamName, name: string): Promise<number | undefined> {
    let server: number | undefined;
    try {
      server = Number(
        await withTimeout(
          client.queryOffset({ reference: name, stream: this.serverStream(stream) }),
          CALL_TIMEOUT_MS,
          'query offset',
        ),
      );
    } catch (err) {
      if (!(err === NO_OFFSET || (err instanceof Error && err.message.includes(`code ${NO_OFFSET}`))))
        throw err;
    }
    const local = this.storedOffsets.get(groupKey(stream, name));
    if (server === undefined) return local;
    return local === undefined ? server : Math.max(server, local);
  }

  /** @internal Remembers an offset this process stored for a named consumer. */
  noteStored(stream: StreamName, name: string, offset: number): void {
    const key = groupKey(stream, name);
    this.storedOffsets.set(key, Math.max(offset, this.storedOffsets.get(key) ?? -1));
  }

  /** @internal A named consumer skipped messages retention dropped before it read them. */
  reportGap(gap: RetentionGap): void {
    this.consumers.reportGap(gap);
  }

  /**
   * @internal Offset of the oldest message the stream still keeps (undefined when it keeps none):
   * the first one a throw-away consumer from `first` is given. Offsets are not contiguous (the
   * server's offset-tracking chunks take some), so a jump alone does not prove messages were lost.
   */
  async firstOffset(client: Client, stream: StreamName): Promise<number | undefined> {
    let found: (offset: number) => void = () => undefined;
    const first = new Promise<number>((resolve) => (found = resolve));
    const probe = await withTimeout(
      client.declareConsumer({ stream: this.serverStream(stream), offset: Offset.first() }, (message) => {
        if (message.offset !== undefined) found(Number(message.offset));
      }),
      CALL_TIMEOUT_MS,
      'declare probe consumer',
    );
    try {
      return await withTimeout(first, 2000, 'first offset').catch(() => undefined);
    } finally {
      await withTimeout(probe.close(), 5000, 'close probe consumer').catch(() => undefined);
    }
  }

  /** @internal Server-side single active consumer exists from RabbitMQ 3.11. */
  serverSupportsSingleActive(client: Client): boolean {
    return versionAtLeast(client.rabbitManagementVersion, 3, 11);
  }

  /** @internal Removes a closed subscription and starts the next member of its single-active group. */
  detach(sub: RabbitSubscription, stream: StreamName, opts: SubscribeOptions): void {
    const next = this.consumers.remove(stream, opts, sub);
    if (next === undefined || this.closed) return;
    this.ensureConnected()
      .then((client) => next.activate(client, this.generation))
      .catch((err) =>
        this.log.error(
          { err, stream, consumer: opts.name },
          'could not start the next single active consumer',
        ),
      );
  }

  /** @internal An `unavailable` error saying where the server should be and what it last answered. */
  unavailable(what: string): PlatformError {
    return new PlatformError(
      'unavailable',
      `${what}; RabbitMQ streams at ${this.params.hostname}:${this.params.port} ${this.client === undefined ? 'are not reachable' : 'did not answer'}${this.lastError ? ` (${this.lastError})` : ''}; check the server and RABBITMQ_STREAM_URL`,
    );
  }

  /**
   * Declares a stream with the retention arguments. An existing stream declared with other
   * arguments keeps them (RabbitMQ refuses the redeclare); that is one warning saying what to do,
   * not a failure.
   */
  private async declareStream(client: Client, stream: StreamName): Promise<void> {
    const name = this.serverStream(stream);
    const args = {
      'max-age': this.bounds.maxAge,
      'max-length-bytes': this.bounds.maxBytes,
      'stream-max-segment-size-bytes': this.bounds.maxSegmentSizeBytes,
    };
    try {
      await withTimeout(
        client.createStream({ stream: name, arguments: args }),
        CALL_TIMEOUT_MS,
        'declare stream',
      );
    } catch (err) {
      if (!describe(err).includes(`code ${PRECONDITION_FAILED}`)) throw err;
      if (this.mismatchReported.has(name)) return;
      this.mismatchReported.add(name);
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      this.log.warn(
        { stream: name, wanted: args },
        `stream "${name}" already exists with retention arguments other than the wanted max-age ${args['max-age']}, max-length-bytes ${args['max-length-bytes']}, stream-max-segment-size-bytes ${args['stream-max-segment-size-bytes']} (RabbitMQ answered PRECONDITION_FAILED; it keeps its own, which \`rabbitmqctl list_queues name arguments\` shows); it is used as it is. To bound it without recreating it: rabbitmqctl set_policy visioninapp-retention '^${escaped}$' '${JSON.stringify(args)}' --apply-to queues (the smaller of policy and argument wins), or set RABBITMQ_STREAM_MAX_AGE, RABBITMQ_STREAM_MAX_BYTES and RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES to the stream's values`,
      );
    }
  }

  // connects, declares the streams and restores producers and consumers; retried (250 ms doubling to 3 s) until it works or the adapter closes
  private connectLoop(): Promise<Client> {
    const closed = () => new PlatformError('unavailable', 'the RabbitMQ broker adapter is closed');
    return retry(() => this.connectOnce(), {
      retries: Infinity,
      minTimeout: RECONNECT_MIN_MS,
      maxTimeout: RECONNECT_MAX_MS,
      randomize: false,
      unref: true,
      shouldRetry: () => !this.closed,
      onRetry: () => {
        if (!this.closed)
          this.log.warn(
            { err: this.lastError },
            'RabbitMQ streams not reachable; retrying (RABBITMQ_STREAM_URL)',
          );
      },
    }).catch((err: unknown) => {
      throw this.closed ? closed() : err;
    });
  }

  private async connectOnce(): Promise<Client> {
    if (this.closed) throw new PlatformError('unavailable', 'the RabbitMQ broker adapter is closed');
    const gen = ++this.generation;
    let client: Client | undefined;
    try {
      client = await withTimeout(
        connect(
          { ...this.params, listeners: { connection_closed: () => this.connectionLost(gen, 'locator') } },
          quietLogger(this.log),
        ),
        CALL_TIMEOUT_MS,
        'connect',
      );
      for (const stream of Object.values(STREAMS)) await this.declareStream(client, stream);
      if (this.closed || gen !== this.generation) throw new Error('superseded');
      this.client = client;
      this.lastError = undefined;
      await this.producers.restore(client, gen);
      for (const sub of this.consumers.values()) await sub.reactivate(client, gen);
      if (gen !== this.generation) throw new Error('connection lost while restoring producers and consumers');
      this.log.info({ host: this.params.hostname, port: this.params.port }, 'connected to RabbitMQ streams');
      return client;
    } catch (err) {
      this.lastError = describe(err);
      if (this.client === client) this.client = undefined;
      if (client !== undefined) withTimeout(client.close(), 2000, 'close').catch(() => undefined);
      // p-retry never retries a TypeError it does not know as a network error; every failure here is worth another try
      throw new Error(this.lastError);
    }
  }
}
