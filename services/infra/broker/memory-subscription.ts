import type { Delivery } from './delivery.js';
import type { StreamLog } from './memory-stream.js';
import type { RetentionGap, StreamName, SubscribeOptions, Subscription } from './port.js';

/** Consumers yield to the event loop this often so a long backlog never starves timers and I/O. */
const YIELD_EVERY = 512;

/** What a subscription needs from the in-process broker (start positions, stored offsets, retention). */
export interface SubscriptionHost {
  startPosition(log: StreamLog, opts: SubscribeOptions): number;
  storeOffset(stream: StreamName, name: string, offset: number): void;
  reportGap(gap: RetentionGap): void;
  detach(sub: MemorySubscription, stream: StreamName, opts: SubscribeOptions): void;
}

/** One subscription of the in-process broker: delivers sequentially, awaiting each handler. */
export class MemorySubscription implements Subscription {
  private closed = false;
  private started = false;
  private position = 0;
  private wakeUp: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly broker: SubscriptionHost,
    private readonly log: StreamLog,
    private readonly opts: SubscribeOptions,
    private readonly delivery: Delivery,
  ) {}

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.position = this.broker.startPosition(this.log, this.opts);
    this.running = this.run();
  }

  wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.log.waiting.delete(this);
    this.wake();
    await this.running;
    this.broker.detach(this, this.log.name, this.opts);
  }

  private async run(): Promise<void> {
    const log = this.log;
    const name = this.opts.name;
    let sinceYield = 0;
    while (!this.closed) {
      if (this.position < log.base) {
        if (name !== undefined)
          this.broker.reportGap({
            stream: log.name,
            consumer: name,
            expected: this.position,
            resumedAt: log.base,
          });
        this.position = log.base;
      }
      const record = log.records[this.position - log.base];
      if (record === undefined) {
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          log.waiting.add(this);
        });
        continue;
      }
      const offset = this.position;
      if (record.message !== undefined) await this.delivery.deliverValid(record.message, offset);
      else await this.delivery.deliver(record.data ?? '', offset);
      this.position = offset + 1;
      if (name !== undefined) this.broker.storeOffset(log.name, name, offset);
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
}
