import { EventEmitter } from 'node:events';

/** What every domain event carries; each domain declares its own union of events in `<domain>/events.ts`. */
export interface DomainEventBase {
  /** Discriminant, `<domain>.<what>`, e.g. `training.metrics`, `rollout.progress`. */
  type: string;
  projectId: string;
  /** Epoch milliseconds. */
  at: number;
}

/** The in-process bus services emit typed domain events on; the UI, MCP and notifications subscribe. */
export class EventBus<E extends DomainEventBase = DomainEventBase> {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(event: E): void {
    this.emitter.emit('event', event);
  }

  /** Subscribes to every event; returns the unsubscribe function. A throwing listener never breaks the emitter. */
  on(listener: (event: E) => void): () => void {
    const safe = (event: E) => {
      try {
        listener(event);
      } catch {
        // a listener's failure is its own; the emitting service must not fail because of it
      }
    };
    this.emitter.on('event', safe);
    return () => this.emitter.off('event', safe);
  }
}

/** What a service that only emits needs; any EventBus whose events include E satisfies it. */
export type EventSink<E extends DomainEventBase> = Pick<EventBus<E>, 'emit'>;
