import type { DomainEventBase } from '../../core/events.js';
import type { Device } from './model.js';
import type { RolloutState, RolloutStatus } from './model.js';

/** A device registered or changed (heartbeat with a new model, state, tags or name). */
export interface DeviceUpdatedEvent extends DomainEventBase {
  type: 'device.updated';
  device: Device;
  /** True the first time the platform hears from the device. */
  registered: boolean;
}

/** A rollout was created; the controller starts it on its next tick. */
export interface RolloutStartedEvent extends DomainEventBase {
  type: 'rollout.started';
  rollout: RolloutStatus;
}

/** Something moved in a rollout: a wave started, a device changed state, a pause or resume. */
export interface RolloutProgressEvent extends DomainEventBase {
  type: 'rollout.progress';
  rolloutId: string;
  state: RolloutState;
  currentWave: number;
  waveCount: number;
  /** Deployments per state, e.g. `{ healthy: 1, pending: 2 }`. */
  counts: Record<string, number>;
  /** What happened, for people: "canary rpi-1 healthy", "wave 1 of 2 started (2 devices)". */
  message: string;
  deviceId?: string;
}

/** A rollout ended: completed, rolled back (a gate failed or a person asked) or failed. */
export interface RolloutFinishedEvent extends DomainEventBase {
  type: 'rollout.finished';
  rolloutId: string;
  state: 'completed' | 'rolled_back' | 'failed';
  reason: string | null;
  rollout: RolloutStatus;
}

/** Every event the fleet domain emits. */
export type FleetEvent =
  DeviceUpdatedEvent | RolloutStartedEvent | RolloutProgressEvent | RolloutFinishedEvent;
