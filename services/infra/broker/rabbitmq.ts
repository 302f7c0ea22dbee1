import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connect, Offset, type Client, type Consumer, type Publisher } from 'rabbitmq-stream-js-client';
import { ConsumerCreditPolicy } from 'rabbitmq-stream-js-client/dist/consumer_credit_policy.js';
import { PlatformError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/log.js';
import type { Health } from '../health.js';
import { ActiveGroups, Delivery } from './delivery.js';
import { parseMessage, type Envelope } from '../../../protocol/envelope.js';
import {
  DEFAULT_RETENTION,
  retentionGapWarning,
  STREAMS,
  type Broker,
  type MessageHandler,
  type RetentionGap,
  type StreamName,
  type StreamRetention,
  type SubscribeOptions,
  type Subscription,
} from './port.js';

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
const STORE_EVERY = 1000;
const STORE_DEBOUNCE_MS = 200;
const CALL_TIMEOUT_MS = 10_000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 3000;
/** Chunks a consumer may have in flight; more than one keeps the socket busy while handlers run. */
const CONSUMER_CREDITS = 10;

/**
 * Lets several chunks be in flight but handles them one after the other: the client starts a
 * handler per chunk as it arrives, so each chunk waits here until the previous one completed.
 */
class SequentialCredits extends ConsumerCreditPolicy {
  private readonly waiting: Array<() => void> = [];
  private busy = false;

  constructor(credits: number) {
    super(credits);
  }

  override async onChunkReceived(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  override async onChunkCompleted(requestWrapper: (howMany: number) => Promise<void>): Promise<void> {
    const next = this.waiting.shift();
    if (next === undefined) this.busy = false;
    else next();
    await this.requestCredits(requestWrapper, 1);
  }
}

interface Pending {
  data: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Epoch ms after which the publish fails as unavailable. */
  deadline: number;
  id?: bigint;
}

interface ProducerState {
  stream: StreamName;
  /** Messages waiting for a publishing id (no producer yet). */
  queue: Pending[];
  /** Sent (or to resend) messages by publishing id, in id order. */
  inflight: Map<bigint, Pending>;
  lastId: bigint;
  publisher?: Publisher;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function describe(err: unknown): string {
  return err instanceof Error
    ? err.message
    : typeof err === 'number'
      ? `server response code ${err}`
      : String(err);
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

/**
 * The broker port over RabbitMQ Streams (rabbitmq-stream-js-client): confirmed, de-duplicated
 * publishing, offset-tracked named consumers, single active consumers, and reconnection after the
 * server restarts with consumers resuming after the last message they handled.
 */
export class RabbitBroker implements Broker {
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
  private readonly publisherRef: string;
  private readonly publishTimeoutMs: number;
  private readonly dedupeWindow: number | undefined;
  private readonly bounds: StreamRetention;
  private readonly onRetentionGap: ((gap: RetentionGap) => void) | undefined;
  /** Streams whose differing arguments were already reported (once per process, not per reconnect). */
  private readonly mismatchReported = new Set<string>();
  private readonly producers = new Map<StreamName, ProducerState>();
  private readonly subscriptions = new Set<RabbitSubscription>();
  private readonly groups = new ActiveGroups<RabbitSubscription>();
  private readonly storedOffsets = new Map<string, number>();
  private client: Client | undefined;
  private generation = 0;
  private connecting: Promise<Client> | undefined;
  private lastError: string | undefined;
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;

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
    this.publisherRef =
      opts.publisherRef ?? `visioninapp-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 30_000;
    this.dedupeWindow = opts.dedupeWindow;
    this.bounds = opts.bounds ?? DEFAULT_RETENTION;
    this.onRetentionGap = opts.onRetentionGap;
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
    const state = this.producer(stream);
    const data = Buffer.from(JSON.stringify(envelope));
    return new Promise<void>((resolve, reject) => {
      state.queue.push({ data, resolve, reject, deadline: Date.now() + this.publishTimeoutMs });
      this.startSweeper();
      this.pump(state);
    });
  }

  /** Fails publishes whose confirm is overdue (one timer for all of them instead of one per message). */
  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(
      () => {
        const now = Date.now();
        let waiting = 0;
        for (const state of this.producers.values()) {
          const overdue = (p: Pending) => p.deadline <= now;
          if (state.queue.some(overdue)) {
            const keep: Pending[] = [];
            for (const p of state.queue) {
              if (overdue(p))
                p.reject(
                  this.unavailable(
                    `no confirm for a message on ${state.stream} within ${this.publishTimeoutMs} ms`,
                  ),
                );
              else keep.push(p);
            }
            state.queue = keep;
          }
          for (const [id, p] of state.inflight) {
            if (!overdue(p)) break;
            state.inflight.delete(id);
            p.reject(
              this.unavailable(
                `no confirm for a message on ${state.stream} within ${this.publishTimeoutMs} ms`,
              ),
            );
          }
          waiting += state.queue.length + state.inflight.size;
        }
        if (waiting === 0) {
          clearInterval(this.sweeper);
          this.sweeper = undefined;
        }
      },
      Math.min(1000, this.publishTimeoutMs),
    );
  }

  async subscribe(
    stream: StreamName,
    opts: SubscribeOptions,
    handler: MessageHandler,
  ): Promise<Subscription> {
    if (this.closed) throw new PlatformError('unavailable', 'the RabbitMQ broker adapter is closed');
    if (opts.singleActive === true && opts.name === undefined)
      throw new PlatformError(
        'invalid_input',
        'a single active consumer needs a name; pass { name, singleActive: true }',
      );
    const sub = new RabbitSubscription(
      this,
      stream,
      opts,
      new Delivery({ stream, handler, log: this.log, consumer: opts.name, dedupeWindow: this.dedupeWindow }),
    );
    this.subscriptions.add(sub);
    const active =
      opts.singleActive === true && opts.name !== undefined
        ? this.groups.join(`${stream}/${opts.name}`, sub)
        : true;
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
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    const deadline = Date.now() + 5000;
    while (
      [...this.producers.values()].some((p) => p.inflight.size + p.queue.length > 0) &&
      Date.now() < deadline &&
      this.client !== undefined
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.closed = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const state of this.producers.values()) {
      for (const p of [...state.queue, ...state.inflight.values()]) {
        p.reject(
          new PlatformError(
            'unavailable',
            'the RabbitMQ broker adapter closed before the message was confirmed',
          ),
        );
      }
      state.queue = [];
      state.inflight.clear();
    }
    const client = this.client;
    this.client = undefined;
    this.generation++;
    if (client !== undefined)
      await withTimeout(client.close(), 5000, 'closing the RabbitMQ client').catch((err) =>
        this.log.debug({ err }, 'RabbitMQ client close failed'),
      );
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
    for (const state of this.producers.values()) state.publisher = undefined;
    for (const sub of this.subscriptions) sub.detachConsumer();
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
    const local = this.storedOffsets.get(`${stream}/${name}`);
    if (server === undefined) return local;
    return local === undefined ? server : Math.max(server, local);
  }

  /** @internal Remembers an offset this process stored for a named consumer. */
  noteStored(stream: StreamName, name: string, offset: number): void {
    const key = `${stream}/${name}`;
    this.storedOffsets.set(key, Math.max(offset, this.storedOffsets.get(key) ?? -1));
  }

  /** @internal A named consumer skipped messages retention dropped before it read them. */
  reportGap(gap: RetentionGap): void {
    this.log.warn({ ...gap, dropped: gap.resumedAt - gap.expected }, retentionGapWarning(gap, this.bounds));
    try {
      this.onRetentionGap?.(gap);
    } catch (err) {
      this.log.error({ err, ...gap }, 'retention gap handler failed');
    }
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
    this.subscriptions.delete(sub);
    if (opts.singleActive !== true || opts.name === undefined) return;
    const next = this.groups.leave(`${stream}/${opts.name}`, sub);
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

  private unavailable(what: string): PlatformError {
    return new PlatformError(
      'unavailable',
      `${what}; RabbitMQ streams at ${this.params.hostname}:${this.params.port} ${this.client === undefined ? 'are not reachable' : 'did not answer'}${this.lastError ? ` (${this.lastError})` : ''}; check the server and RABBITMQ_STREAM_URL`,
    );
  }

  private producer(stream: StreamName): ProducerState {
    let state = this.producers.get(stream);
    if (state === undefined) {
      state = { stream, queue: [], inflight: new Map(), lastId: 0n };
      this.producers.set(stream, state);
    }
    return state;
  }

  private pump(state: ProducerState): void {
    const publisher = state.publisher;
    if (publisher === undefined) {
      if (this.client !== undefined)
        this.declareProducer(this.client, this.generation, state).catch((err) =>
          this.log.warn({ err }, 'declaring RabbitMQ producer failed'),
        );
      else this.ensureConnected().catch(() => undefined);
      return;
    }
    for (const p of state.queue) {
      state.lastId += 1n;
      p.id = state.lastId;
      state.inflight.set(p.id, p);
      this.send(publisher, p);
    }
    state.queue = [];
  }

  private send(publisher: Publisher, p: Pending): void {
    publisher
      .send(p.data, { publishingId: p.id })
      .catch((err) => this.log.debug({ err }, 'RabbitMQ send failed; will resend after reconnect'));
  }

  private declaring = new Map<StreamName, Promise<void>>();

  private declareProducer(client: Client, gen: number, state: ProducerState): Promise<void> {
    const running = this.declaring.get(state.stream);
    if (running !== undefined) return running;
    const work = (async () => {
      const publisher = await withTimeout(
        client.declarePublisher({
          stream: this.serverStream(state.stream),
          publisherRef: `${this.publisherRef}/${state.stream}`,
          connectionClosedListener: () => this.connectionLost(gen, `producer ${state.stream}`),
        }),
        CALL_TIMEOUT_MS,
        'declare producer',
      );
      const last = await withTimeout(
        publisher.getLastPublishingId(),
        CALL_TIMEOUT_MS,
        'query last publishing id',
      );
      if (gen !== this.generation) return;
      publisher.on('publish_confirm', (err, ids) => {
        for (const id of ids) {
          const p = state.inflight.get(id);
          if (p === undefined) continue;
          state.inflight.delete(id);
          if (err === null) p.resolve();
          else
            p.reject(
              new PlatformError(
                'internal',
                `RabbitMQ refused a message on ${state.stream} (publish error code ${err}); check the stream exists and the user may write to it`,
              ),
            );
        }
      });
      if (last > state.lastId) state.lastId = last;
      // Messages the server already stored before the connection dropped are confirmed; the rest are resent with the same ids.
      for (const [id, p] of state.inflight) {
        if (id <= last) {
          state.inflight.delete(id);
          p.resolve();
        } else this.send(publisher, p);
      }
      state.publisher = publisher;
      this.pump(state);
    })().finally(() => this.declaring.delete(state.stream));
    this.declaring.set(state.stream, work);
    return work;
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

  private async connectLoop(): Promise<Client> {
    let delay = RECONNECT_MIN_MS;
    for (;;) {
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
        for (const state of this.producers.values())
          if (state.inflight.size + state.queue.length > 0) await this.declareProducer(client, gen, state);
        for (const sub of this.subscriptions) await sub.reactivate(client, gen);
        if (gen !== this.generation)
          throw new Error('connection lost while restoring producers and consumers');
        this.log.info(
          { host: this.params.hostname, port: this.params.port },
          'connected to RabbitMQ streams',
        );
        return client;
      } catch (err) {
        this.lastError = describe(err);
        if (this.client === client) this.client = undefined;
        if (client !== undefined) withTimeout(client.close(), 2000, 'close').catch(() => undefined);
        if (this.closed) throw new PlatformError('unavailable', 'the RabbitMQ broker adapter is closed');
        this.log.warn(
          { err: this.lastError, retryInMs: delay },
          'RabbitMQ streams not reachable; retrying (RABBITMQ_STREAM_URL)',
        );
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(RECONNECT_MAX_MS, delay * 2);
      }
    }
  }
}

/** One consumer: delivers sequentially through the shared Delivery and tracks its offset. */
class RabbitSubscription implements Subscription {
  private consumer: Consumer | undefined;
  private gen = -1;
  private client: Client | undefined;
  private active = false;
  private closed = false;
  private lastHandled: number | undefined;
  private lastStored: number | undefined;
  private sinceStore = 0;
  private storeTimer: NodeJS.Timeout | undefined;
  private inflight: Promise<unknown> | undefined;
  /** The offset a named consumer resumes at; a first message beyond it means retention dropped some. */
  private expectedNext: number | undefined;

  constructor(
    private readonly broker: RabbitBroker,
    private readonly stream: StreamName,
    private readonly opts: SubscribeOptions,
    private readonly delivery: Delivery,
  ) {}

  async activate(client: Client, gen: number): Promise<void> {
    if (this.closed) return;
    this.active = true;
    await this.declare(client, gen);
  }

  async reactivate(client: Client, gen: number): Promise<void> {
    if (this.active && !this.closed) await this.declare(client, gen);
  }

  detachConsumer(): void {
    this.consumer = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.storeTimer);
    await this.inflight;
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer !== undefined) {
      await this.storeNow(consumer, true);
      await withTimeout(consumer.close(), 5000, 'close consumer').catch(() => undefined);
    }
    this.broker.detach(this, this.stream, this.opts);
  }

  private async startOffset(client: Client): Promise<Offset> {
    this.expectedNext = undefined;
    if (this.lastHandled !== undefined) return this.resumeAt(this.lastHandled + 1);
    if (this.opts.name !== undefined) {
      const stored = await this.broker.storedOffset(client, this.stream, this.opts.name);
      if (stored !== undefined) return this.resumeAt(stored + 1);
    }
    const from = this.opts.from ?? 'next';
    if (from === 'first') return Offset.first();
    if (from === 'next') return Offset.next();
    return Offset.offset(BigInt(from.offset));
  }

  private resumeAt(offset: number): Offset {
    if (this.opts.name !== undefined) this.expectedNext = offset;
    return Offset.offset(BigInt(offset));
  }

  private async declare(client: Client, gen: number): Promise<void> {
    if (this.closed) return;
    const name = this.opts.name;
    const serverSac =
      this.opts.singleActive === true && name !== undefined && this.broker.serverSupportsSingleActive(client);
    const offset = await this.startOffset(client);
    this.gen = gen;
    this.client = client;
    this.consumer = await withTimeout(
      client.declareConsumer(
        {
          stream: this.broker.serverStream(this.stream),
          offset,
          ...(name === undefined ? {} : { consumerRef: name }),
          ...(serverSac
            ? { singleActive: true, consumerUpdateListener: async () => this.startOffset(client) }
            : {}),
          connectionClosedListener: () => this.broker.connectionLost(gen, `consumer ${this.stream}`),
          creditPolicy: new SequentialCredits(CONSUMER_CREDITS),
        },
        (message) => this.onMessage(gen, message.content, message.offset),
      ),
      CALL_TIMEOUT_MS,
      'declare consumer',
    );
  }

  private async onMessage(gen: number, content: Buffer, rawOffset: bigint | undefined): Promise<void> {
    if (this.closed || gen !== this.gen || rawOffset === undefined) return;
    const offset = Number(rawOffset);
    if (this.lastHandled !== undefined && offset <= this.lastHandled) return;
    const expected = this.expectedNext;
    if (expected !== undefined && offset >= expected) {
      this.expectedNext = undefined;
      // The server starts at the oldest kept chunk when the asked offset is gone; a jump can also be
      // offset-tracking chunks, so only a last-read offset older than the oldest kept message counts.
      if (offset > expected && this.opts.name !== undefined && this.client !== undefined) {
        const first = await this.broker.firstOffset(this.client, this.stream).catch(() => undefined);
        if (first !== undefined && expected <= first)
          this.broker.reportGap({
            stream: this.stream,
            consumer: this.opts.name,
            expected,
            resumedAt: offset,
          });
      }
    }
    const work = this.delivery.deliver(content, offset);
    this.inflight = work;
    await work;
    this.lastHandled = offset;
    if (this.opts.name === undefined) return;
    if (++this.sinceStore >= STORE_EVERY) void this.storeSoon(0);
    else void this.storeSoon(STORE_DEBOUNCE_MS);
  }

  private async storeSoon(delayMs: number): Promise<void> {
    if (delayMs === 0) {
      clearTimeout(this.storeTimer);
      this.storeTimer = undefined;
      if (this.consumer !== undefined) await this.storeNow(this.consumer, false);
      return;
    }
    if (this.storeTimer !== undefined) return;
    this.storeTimer = setTimeout(() => {
      this.storeTimer = undefined;
      if (this.consumer !== undefined) void this.storeNow(this.consumer, false);
    }, delayMs);
    this.storeTimer.unref();
  }

  private async storeNow(consumer: Consumer, confirm: boolean): Promise<void> {
    const name = this.opts.name;
    const offset = this.lastHandled;
    if (name === undefined || offset === undefined || offset === this.lastStored) return;
    this.sinceStore = 0;
    this.broker.noteStored(this.stream, name, offset);
    // StoreOffset has no response; when it matters (close, hand-over) wait until a query sees it.
    consumer.storeOffset(BigInt(offset)).catch(() => undefined);
    this.lastStored = offset;
    if (!confirm) return;
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      const seen = await withTimeout(consumer.queryOffset(), 1000, 'query offset').catch(() => undefined);
      if (seen !== undefined && Number(seen) >= offset) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function quietLogger(log: Logger): {
  debug(m: string): void;
  info(m: string): void;
  warn(m: string): void;
  error(m: string): void;
} {
  const debug = (message: string) => log.debug({ component: 'rabbitmq-stream-js-client' }, message);
  return { debug, info: debug, warn: debug, error: debug };
}
