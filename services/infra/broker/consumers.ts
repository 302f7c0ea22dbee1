import { PlatformError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { ActiveGroups, Delivery } from './delivery.js';
import {
  retentionGapWarning,
  type MessageHandler,
  type RetentionGap,
  type StreamName,
  type StreamRetention,
  type SubscribeOptions,
} from './port.js';

/** What both broker adapters share about their consumers: how a subscription joins, leaves and hears of a retention gap. */
export interface ConsumerSetOptions {
  log: Logger;
  dedupeWindow: number | undefined;
  bounds: StreamRetention;
  onRetentionGap: ((gap: RetentionGap) => void) | undefined;
}

/**
 * The open subscriptions of one broker adapter, and the single-active groups among them: the
 * oldest open member of a named group receives; when it closes, the next takes over.
 */
export class ConsumerSet<S> {
  private readonly all = new Set<S>();
  private readonly groups = new ActiveGroups<S>();

  constructor(private readonly opts: ConsumerSetOptions) {}

  /**
   * Checks the options, builds the subscription around its `Delivery` (validation, de-duplication,
   * one handler at a time) and adds it; `active` says whether it receives now or waits its turn.
   */
  add(
    stream: StreamName,
    opts: SubscribeOptions,
    handler: MessageHandler,
    make: (delivery: Delivery) => S,
  ): { sub: S; active: boolean } {
    if (opts.singleActive === true && opts.name === undefined)
      throw new PlatformError(
        'invalid_input',
        'a single active consumer needs a name; pass { name, singleActive: true }',
      );
    const { log, dedupeWindow } = this.opts;
    const sub = make(new Delivery({ stream, handler, log, consumer: opts.name, dedupeWindow }));
    this.all.add(sub);
    const active =
      opts.singleActive === true && opts.name !== undefined
        ? this.groups.join(groupKey(stream, opts.name), sub)
        : true;
    return { sub, active };
  }

  /** Removes a closed subscription; returns the member of its single-active group that receives next, if any. */
  remove(stream: StreamName, opts: SubscribeOptions, sub: S): S | undefined {
    this.all.delete(sub);
    if (opts.singleActive !== true || opts.name === undefined) return undefined;
    return this.groups.leave(groupKey(stream, opts.name), sub);
  }

  /** The open subscriptions. */
  values(): S[] {
    return [...this.all];
  }

  /** Warns that a named consumer skipped messages retention dropped before it read them, and tells the platform. */
  reportGap(gap: RetentionGap): void {
    const { log, bounds, onRetentionGap } = this.opts;
    log.warn({ ...gap, dropped: gap.resumedAt - gap.expected }, retentionGapWarning(gap, bounds));
    try {
      onRetentionGap?.(gap);
    } catch (err) {
      log.error({ err, ...gap }, 'retention gap handler failed');
    }
  }
}

/** The key of a named consumer of a stream (its offset and its single-active group). */
export function groupKey(stream: StreamName, name: string): string {
  return `${stream}/${name}`;
}
