import type { CallContext } from '../../core/context.js';
import type { EventBus } from '../../core/events.js';
import type { Logger } from '../../core/log.js';
import type { Db } from '../infra/db/port.js';
import type { Storage } from '../infra/storage/port.js';
import type { FeedbackEvent } from './events.js';
import { DEFAULT_FEEDBACK_UPLOAD_MAX_BYTES, type ReviewedBox } from './model.js';

/** What feedback needs from the datasets domain (`DatasetService` satisfies it). */
export interface FeedbackDatasets {
  addSamples(
    ctx: CallContext,
    ref: string,
    samples: Array<{ imageKey: string; boxes: ReviewedBox[]; source?: string }>,
    opts?: { note?: string; lineage?: Record<string, unknown> },
  ): Promise<{ ref: string }>;
}

/** What feedback reads from the registry (`ModelRegistry` satisfies it): a version's name and lineage. */
export interface FeedbackModels {
  get(
    ctx: CallContext,
    ref: string,
  ): Promise<{
    id: string;
    name: string;
    ref: string;
    lineage: { datasetName: string | null; config: unknown };
  }>;
}

/** Dependencies and settings of the feedback service. */
export interface FeedbackServiceOptions {
  db: Db;
  storage: Storage;
  datasets: FeedbackDatasets;
  events: EventBus<FeedbackEvent>;
  log: Logger;
  /** The registry, to name the model of each sample and to default a plan's dataset and config. */
  models?: FeedbackModels;
  /** The project a device belongs to (e.g. `FleetService.projectOf`); default: `default`. */
  projectOf?: (deviceId: string) => Promise<string>;
  /** Lifetime of upload URLs (default 15 min). */
  uploadUrlTtlSeconds?: number;
  /** Largest feedback frame a device may upload, in bytes (default 10 MiB). */
  uploadMaxBytes?: number;
  now?: () => number;
}

/** The options with every default filled in (`models` stays optional). */
export type FeedbackSettings = Required<Omit<FeedbackServiceOptions, 'models'>> &
  Pick<FeedbackServiceOptions, 'models'>;

/** Fills in the defaults. */
export function feedbackSettings(opts: FeedbackServiceOptions): FeedbackSettings {
  return {
    uploadUrlTtlSeconds: 900,
    uploadMaxBytes: DEFAULT_FEEDBACK_UPLOAD_MAX_BYTES,
    projectOf: async () => 'default',
    now: Date.now,
    ...opts,
  };
}
