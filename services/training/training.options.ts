import type { EventBus } from '../../core/events.js';
import type { Logger } from '../../core/log.js';
import type { Broker } from '../infra/broker/port.js';
import type { Db } from '../infra/db/port.js';
import type { Storage } from '../infra/storage/port.js';
import type { ModelRegistry } from '../models/model.registry.js';
import type { TrainingEvent } from './events.js';
import type { TrainingDatasets } from './model.js';

/** Dependencies and settings of the training service. */
export interface TrainingServiceOptions {
  db: Db;
  broker: Broker;
  storage: Storage;
  events: EventBus<TrainingEvent>;
  log: Logger;
  datasets: TrainingDatasets;
  models: ModelRegistry;
  /** A runner silent this long is dead; its job fails or is re-queued. */
  heartbeatTimeoutMs: number;
  /** Attempts per job (1 = never re-queued). */
  maxAttempts: number;
  /** Lifetime of the signed dataset and upload URLs (default 48 h, longer than most trainings). */
  urlTtlSeconds?: number;
  /** Log lines kept in the database per job (default 200). */
  logTailLines?: number;
  /** `source` of the envelopes the platform publishes. */
  source?: string;
  now?: () => number;
}

/** The options with every default filled in. */
export type TrainingSettings = Required<TrainingServiceOptions>;

/** Fills in the defaults. */
export function trainingSettings(opts: TrainingServiceOptions): TrainingSettings {
  return { urlTtlSeconds: 48 * 3600, logTailLines: 200, source: 'platform', now: Date.now, ...opts };
}
