import type { EventBus } from '../../core/events.js';
import { STREAMS, type Broker, type Subscription } from '../infra/broker/port.js';
import type { Cache, Lock } from '../infra/cache/port.js';
import type { Logger } from '../../core/log.js';
import type { FleetEvent } from './events.js';
import type { RolloutService } from './rollout.service.js';

/** Name of the cache lock that makes the controller a singleton across platform instances. */
export const ROLLOUT_CONTROLLER_LOCK = 'rollout-controller';

/** Dependencies and settings of the rollout controller. */
export interface RolloutControllerOptions {
  rollouts: RolloutService;
  broker: Broker;
  cache: Cache;
  log: Logger;
  /** When set, a new rollout is started at once instead of on the next tick. */
  events?: EventBus<FleetEvent>;
  /** Interval of the periodic tick (default 2 s). */
  tickMs?: number;
  /**
   * TTL of the singleton lock (default 10 s): renewed every third of it while held, on a timer of its
   * own so a long tick never lets it lapse; when the leader dies, another instance leads within it.
   */
  lockTtlMs?: number;
}

/** What one tick did. */
export interface TickResult {
  /** False when another instance holds the lock; nothing was advanced. */
  leader: boolean;
  /** Rollouts advanced. */
  advanced: string[];
}

/**
 * Drives every active rollout: a singleton across instances (cache lock `rollout-controller`,
 * extended while held), a periodic `tick()` that advances each rollout from its recorded state (so a
 * restarted platform continues where it stopped), and the telemetry consumer feeding
 * `device.health` and `device.heartbeat` into the gates.
 */
export class RolloutController {
  private readonly rollouts: RolloutService;
  private readonly broker: Broker;
  private readonly cache: Cache;
  private readonly log: Logger;
  private readonly events: EventBus<FleetEvent> | undefined;
  private readonly tickMs: number;
  private readonly lockTtlMs: number;
  private lock: Lock | undefined;
  private timer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private subscription: Subscription | undefined;
  private unsubscribe: (() => void) | undefined;
  private ticking: Promise<TickResult> | undefined;
  private stopped = false;

  constructor(opts: RolloutControllerOptions) {
    this.rollouts = opts.rollouts;
    this.broker = opts.broker;
    this.cache = opts.cache;
    this.log = opts.log;
    this.events = opts.events;
    this.tickMs = opts.tickMs ?? 2000;
    this.lockTtlMs = opts.lockTtlMs ?? 10_000;
  }

  /** True while this instance holds the singleton lock. */
  get isLeader(): boolean {
    return this.lock !== undefined;
  }

  /** Subscribes to telemetry (`platform-rollouts`, single active) and starts the periodic tick. */
  async start(): Promise<void> {
    this.stopped = false;
    this.subscription = await this.broker.subscribe(
      STREAMS.telemetry,
      { name: 'platform-rollouts', singleActive: true, from: 'next' },
      (envelope) => this.handleTelemetry(envelope),
    );
    this.unsubscribe = this.events?.on((e) => {
      if (e.type === 'rollout.started') this.kick();
    });
    const loop = () => {
      this.timer = setTimeout(() => {
        void this.tick().finally(() => {
          if (!this.stopped) loop();
        });
      }, this.tickMs);
      this.timer.unref();
    };
    this.renewTimer = setInterval(() => void this.renewLock(), Math.max(50, Math.floor(this.lockTtlMs / 3)));
    this.renewTimer.unref();
    await this.tick();
    loop();
  }

  /** Stops the tick and the consumer, and releases the lock so another instance takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.renewTimer);
    this.unsubscribe?.();
    await this.subscription?.close();
    await this.ticking?.catch(() => undefined);
    const lock = this.lock;
    this.lock = undefined;
    await lock
      ?.release()
      .catch((err: Error) =>
        this.log.warn({ err: err.message }, 'could not release the rollout controller lock'),
      );
  }

  /** Takes or extends the lock, then advances every active rollout; a no-op on instances without the lock. */
  tick(): Promise<TickResult> {
    if (this.ticking !== undefined) return this.ticking;
    this.ticking = this.tickOnce().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /** Feeds one telemetry message to the gates; the leader advances the rollouts it touched. Never throws. */
  async handleTelemetry(message: unknown): Promise<void> {
    const touched = await this.rollouts.applyTelemetry(message);
    if (touched.length === 0 || !this.isLeader) return;
    for (const id of touched) await this.advanceSafely(id);
  }

  private async tickOnce(): Promise<TickResult> {
    if (!(await this.holdLock())) return { leader: false, advanced: [] };
    const advanced: string[] = [];
    let ids: string[];
    try {
      ids = await this.rollouts.activeRolloutIds();
    } catch (err) {
      this.log.error(
        { err: (err as Error).message },
        'rollout controller could not list active rollouts; retrying next tick',
      );
      return { leader: true, advanced };
    }
    for (const id of ids) {
      if (this.stopped && this.lock === undefined) break;
      if (await this.advanceSafely(id)) advanced.push(id);
    }
    return { leader: true, advanced };
  }

  private async advanceSafely(id: string): Promise<boolean> {
    try {
      await this.rollouts.advance(id);
      return true;
    } catch (err) {
      this.log.error(
        { err: (err as Error).message, rolloutId: id },
        'rollout controller failed to advance a rollout; retrying next tick',
      );
      return false;
    }
  }

  private async holdLock(): Promise<boolean> {
    try {
      if (this.lock !== undefined) {
        if (await this.lock.extend(this.lockTtlMs)) return true;
        this.log.warn('rollout controller lost its lock; another instance leads now');
        this.lock = undefined;
      }
      if (this.stopped) return false;
      this.lock = await this.cache.acquireLock(ROLLOUT_CONTROLLER_LOCK, this.lockTtlMs);
      if (this.lock !== undefined) this.log.info('rollout controller took the lead');
      return this.lock !== undefined;
    } catch (err) {
      this.log.error(
        { err: (err as Error).message },
        'rollout controller cannot reach the cache for its lock; idle until it can',
      );
      this.lock = undefined;
      return false;
    }
  }

  /** Extends a held lock between ticks; a lost lock makes this instance a follower at once. */
  private async renewLock(): Promise<void> {
    const lock = this.lock;
    if (lock === undefined || this.stopped) return;
    const kept = await lock.extend(this.lockTtlMs).catch(() => false);
    if (!kept && this.lock === lock) {
      this.log.warn('rollout controller lost its lock; another instance leads now');
      this.lock = undefined;
    }
  }

  private kick(): void {
    if (this.stopped) return;
    setImmediate(() => void this.tick());
  }
}
