import type { Logger } from '../../../core/log.js';
import { decodeMessage, type Message } from '../../../protocol/envelope.js';
import type { MessageHandler, StreamName } from './port.js';

/** How many recent envelope ids each subscription remembers to drop duplicates. */
export const DEFAULT_DEDUPE_WINDOW = 10_000;

/** What became of one delivered record. */
export type DeliveryOutcome = 'handled' | 'invalid' | 'duplicate' | 'failed';

/**
 * The one place both broker adapters turn raw bytes into handler calls: decode and validate with
 * the envelope contract (invalid records are logged with their offset and skipped), drop envelope
 * ids seen recently, and isolate handler errors (logged; the caller still advances its offset).
 */
export class Delivery {
  private readonly recent = new Set<string>();
  private readonly window: number;
  private readonly ring: Array<string | undefined>;
  private next = 0;

  constructor(
    private readonly opts: {
      stream: StreamName;
      handler: MessageHandler;
      log: Logger;
      /** Subscription name for log lines. */
      consumer?: string;
      dedupeWindow?: number;
    },
  ) {
    this.window = Math.max(1, opts.dedupeWindow ?? DEFAULT_DEDUPE_WINDOW);
    this.ring = new Array<string | undefined>(this.window);
  }

  /** Delivers one record read at `offset`; never throws. */
  async deliver(bytes: Buffer | string, offset: number): Promise<DeliveryOutcome> {
    const parsed = decodeMessage(bytes);
    const { stream, consumer, log } = this.opts;
    if (!parsed.ok) {
      log.warn({ stream, consumer, offset, error: parsed.error }, 'skipping invalid broker message');
      return 'invalid';
    }
    return this.deliverValid(parsed.message, offset);
  }

  /** Delivers a message already validated against the contract (the in-process broker validates at publish). */
  async deliverValid(message: Message, offset: number): Promise<DeliveryOutcome> {
    const { stream, consumer, log } = this.opts;
    if (this.recent.has(message.id)) {
      log.debug({ stream, consumer, offset, id: message.id }, 'dropping duplicate broker message');
      return 'duplicate';
    }
    this.remember(message.id);
    try {
      await this.opts.handler(message, { offset, stream });
      return 'handled';
    } catch (err) {
      log.error(
        { stream, consumer, offset, id: message.id, type: message.type, err },
        'broker message handler failed; moving on',
      );
      return 'failed';
    }
  }

  private remember(id: string): void {
    // A ring of the last ids: evicting through the Set's iterator gets slow once many entries were deleted.
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.recent.delete(evicted);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.window;
    this.recent.add(id);
  }
}

/**
 * Decides which of the same-named single-active subscriptions inside one process receives: the
 * oldest open one; when it closes, the next takes over (and resumes from the stored offset).
 */
export class ActiveGroups<S> {
  private readonly groups = new Map<string, S[]>();

  /** Adds `member` to group `key`; returns true when it is the active one. */
  join(key: string, member: S): boolean {
    const list = this.groups.get(key) ?? [];
    list.push(member);
    this.groups.set(key, list);
    return list[0] === member;
  }

  /** Removes `member`; returns the member that becomes active, if the active one left. */
  leave(key: string, member: S): S | undefined {
    const list = this.groups.get(key);
    if (list === undefined) return undefined;
    const wasActive = list[0] === member;
    const rest = list.filter((m) => m !== member);
    if (rest.length === 0) this.groups.delete(key);
    else this.groups.set(key, rest);
    return wasActive ? rest[0] : undefined;
  }
}
