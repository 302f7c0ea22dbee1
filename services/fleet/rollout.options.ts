import type { EventBus } from '../../core/events.js';
import type { Logger } from '../../core/log.js';
import type { Broker } from '../infra/broker/port.js';
import type { Db } from '../infra/db/port.js';
import type { Storage } from '../infra/storage/port.js';
import type { FleetEvent } from './events.js';
import type { FleetService } from './fleet.service.js';
import type { RolloutGates, RolloutModels } from './model.js';

/** Dependencies and settings of the rollout service. */
export interface RolloutServiceOptions {
  db: Db;
  broker: Broker;
  storage: Storage;
  models: RolloutModels;
  fleet: FleetService;
  events: EventBus<FleetEvent>;
  log: Logger;
  /** Lifetime of the signed model URL in `deploy.apply` (default 1 h). */
  urlTtlSeconds?: number;
  /** `source` of the envelopes the platform publishes. */
  source?: string;
  /** Gates of a rollout that names none (ROLLOUT_* config); each field falls back to the schema default. */
  defaultGates?: Partial<RolloutGates>;
  now?: () => number;
}

/** The options with every default filled in. */
export type RolloutSettings = Required<RolloutServiceOptions>;

/** Fills in the defaults. */
export function rolloutSettings(opts: RolloutServiceOptions): RolloutSettings {
  return { urlTtlSeconds: 3600, source: 'platform', defaultGates: {}, now: Date.now, ...opts };
}
