import type { Logger } from '../core/log.js';
import type { Envelope } from '../protocol/envelope.js';
import type { Broker, StreamName } from '../services/infra/broker/port.js';

/** Options of the ordered publisher. */
export interface OrderedPublisherOptions {
  broker: Broker;
  log: Logger;
  /** First retry delay; doubles up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Publishes envelopes one at a time in the order they were queued, retrying a failed publish with
 * backoff until it succeeds. A retried envelope keeps its id, so the broker drops a duplicate when an
 * earlier attempt did land: nothing is lost, reordered or doubled across a broker reconnect.
 */
export class OrderedPublisher {
  private readonly queue: { stream: StreamName; envelope: Envelope }[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly opts: OrderedPublisherOptions) {
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 5000;
  }

  /** Queues an envelope; returns at once. */
  publish(stream: StreamName, envelope: Envelope): void {
    this.queue.push({ stream, envelope });
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Messages not yet confirmed by the broker. */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once everything queued so far is published (or `timeoutMs` passes). */
  async flush(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      await Promise.race([this.running, new Promise((r) => setTimeout(r, 50))]);
    }
    return this.queue.length === 0;
  }

  /** Stops retrying; what is still queued is dropped (after a flush attempt by the caller). */
  close(): void {
    this.closed = true;
  }

  private async drain(): Promise<void> {
    let delay = this.baseDelayMs;
    while (this.queue.length > 0 && !this.closed) {
      const head = this.queue[0]!;
      try {
        await this.opts.broker.publish(head.stream, head.envelope);
        this.queue.shift();
        delay = this.baseDelayMs;
      } catch (err) {
        this.opts.log.warn(
          { err: (err as Error).message, type: head.envelope.type, retryInMs: delay },
          'publish failed; retrying',
        );
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(this.maxDelayMs, delay * 2);
      }
    }
  }
}
