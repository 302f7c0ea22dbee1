import type { Client, Publisher } from 'rabbitmq-stream-js-client';
import { PlatformError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import type { StreamName } from './port.js';
import { CALL_TIMEOUT_MS, withTimeout } from './rabbitmq-client.js';

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

/** What the producers need from their broker adapter (the connection and its generation). */
export interface ProducerHost {
  /** The connected client, if any, and the generation it belongs to. */
  connection(): { client: Client | undefined; generation: number };
  ensureConnected(): Promise<Client>;
  connectionLost(gen: number, what: string): void;
  serverStream(stream: StreamName): string;
  unavailable(what: string): PlatformError;
}

/**
 * Confirmed, de-duplicated publishing for the RabbitMQ adapter: one producer per stream with publishing
 * ids, messages queued while disconnected, resent after a reconnect (those the server already stored are
 * confirmed), and failed as unavailable when no confirm comes within the publish timeout.
 */
export class RabbitProducers {
  private readonly producers = new Map<StreamName, ProducerState>();
  private readonly declaring = new Map<StreamName, Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: ProducerHost,
    private readonly opts: { log: Logger; publisherRef: string; publishTimeoutMs: number },
  ) {}

  /** Sends `data` with the next publishing id of the stream; resolves on the server's confirm. */
  publish(stream: StreamName, data: Buffer): Promise<void> {
    const state = this.producer(stream);
    return new Promise<void>((resolve, reject) => {
      state.queue.push({ data, resolve, reject, deadline: Date.now() + this.opts.publishTimeoutMs });
      this.startSweeper();
      this.pump(state);
    });
  }

  /** Messages not confirmed yet, over every stream. */
  waiting(): number {
    let n = 0;
    for (const p of this.producers.values()) n += p.inflight.size + p.queue.length;
    return n;
  }

  /** Fails every unconfirmed message with an error of `err` and stops the sweeper (the adapter closed). */
  failAll(err: () => Error): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const state of this.producers.values()) {
      for (const p of [...state.queue, ...state.inflight.values()]) p.reject(err());
      state.queue = [];
      state.inflight.clear();
    }
  }

  /** Forgets the producers of a lost connection; their messages are resent after the reconnect. */
  connectionLost(): void {
    for (const state of this.producers.values()) state.publisher = undefined;
  }

  /** Declares the producers of streams with messages waiting, on a new connection. */
  async restore(client: Client, gen: number): Promise<void> {
    for (const state of this.producers.values())
      if (state.inflight.size + state.queue.length > 0) await this.declareProducer(client, gen, state);
  }

  /** Fails publishes whose confirm is overdue (one timer for all of them instead of one per message). */
  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    const overdueError = (stream: StreamName) =>
      this.host.unavailable(`no confirm for a message on ${stream} within ${this.opts.publishTimeoutMs} ms`);
    this.sweeper = setInterval(
      () => {
        const now = Date.now();
        const overdue = (p: Pending) => p.deadline <= now;
        for (const state of this.producers.values()) {
          if (state.queue.some(overdue)) {
            const keep: Pending[] = [];
            for (const p of state.queue) {
              if (overdue(p)) p.reject(overdueError(state.stream));
              else keep.push(p);
            }
            state.queue = keep;
          }
          for (const [id, p] of state.inflight) {
            if (!overdue(p)) break;
            state.inflight.delete(id);
            p.reject(overdueError(state.stream));
          }
        }
        if (this.waiting() === 0) {
          clearInterval(this.sweeper);
          this.sweeper = undefined;
        }
      },
      Math.min(1000, this.opts.publishTimeoutMs),
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
      const { client, generation } = this.host.connection();
      if (client !== undefined)
        this.declareProducer(client, generation, state).catch((err) =>
          this.opts.log.warn({ err }, 'declaring RabbitMQ producer failed'),
        );
      else this.host.ensureConnected().catch(() => undefined);
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
      .catch((err) => this.opts.log.debug({ err }, 'RabbitMQ send failed; will resend after reconnect'));
  }

  private declareProducer(client: Client, gen: number, state: ProducerState): Promise<void> {
    const running = this.declaring.get(state.stream);
    if (running !== undefined) return running;
    const work = (async () => {
      const publisher = await withTimeout(
        client.declarePublisher({
          stream: this.host.serverStream(state.stream),
          publisherRef: `${this.opts.publisherRef}/${state.stream}`,
          connectionClosedListener: () => this.host.connectionLost(gen, `producer ${state.stream}`),
        }),
        CALL_TIMEOUT_MS,
        'declare producer',
      );
      const last = await withTimeout(
        publisher.getLastPublishingId(),
        CALL_TIMEOUT_MS,
        'query last publishing id',
      );
      if (gen !== this.host.connection().generation) return;
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
}
