import { Offset, type Client, type Consumer } from 'rabbitmq-stream-js-client';
import { ConsumerCreditPolicy } from 'rabbitmq-stream-js-client/dist/consumer_credit_policy.js';
import type { Delivery } from './delivery.js';
import type { RetentionGap, StreamName, SubscribeOptions, Subscription } from './port.js';
import { CALL_TIMEOUT_MS, withTimeout } from './rabbitmq-client.js';

const STORE_EVERY = 1000;
const STORE_DEBOUNCE_MS = 200;
/** Chunks a consumer may have in flight; more than one keeps the socket busy while handlers run. */
const CONSUMER_CREDITS = 10;

/** What a consumer needs from its broker adapter (the connection, stored offsets, retention). */
export interface ConsumerHost {
  serverStream(stream: StreamName): string;
  storedOffset(client: Client, stream: StreamName, name: string): Promise<number | undefined>;
  noteStored(stream: StreamName, name: string, offset: number): void;
  firstOffset(client: Client, stream: StreamName): Promise<number | undefined>;
  reportGap(gap: RetentionGap): void;
  serverSupportsSingleActive(client: Client): boolean;
  connectionLost(gen: number, what: string): void;
  detach(sub: RabbitSubscription, stream: StreamName, opts: SubscribeOptions): void;
}

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

/** One consumer: delivers sequentially through the shared Delivery and tracks its offset. */
export class RabbitSubscription implements Subscription {
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
    private readonly broker: ConsumerHost,
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
