export { DEVICE_ID, deviceSearchDoc, deviceSearchDocs, deviceTargetSchema, FleetService, formatDuration } from './fleet.service.js';
export type { Device, DeviceHealth, DeviceState, DeviceTarget, FleetServiceOptions, HealthThresholds } from './fleet.service.js';
export { DEPLOYMENT_STATES, ROLLOUT_STATES, RolloutService } from './rollout.service.js';
export type {
  DeploymentState,
  DeploymentStatus,
  RolloutModels,
  RolloutModelVersion,
  RolloutPlan,
  RolloutServiceOptions,
  RolloutState,
  RolloutStatus,
} from './rollout.service.js';
export { ROLLOUT_CONTROLLER_LOCK, RolloutController } from './rollout.controller.js';
export type { RolloutControllerOptions, TickResult } from './rollout.controller.js';
export { assignWaves, offlinePolicySchema, rolloutGatesSchema, rolloutInputSchema, rolloutStrategySchema } from './rollout.plan.js';
export type { OfflinePolicy, PlannedDevice, PlannedWave, RolloutGates, RolloutInput, RolloutStrategy } from './rollout.plan.js';
export type { DeviceUpdatedEvent, FleetEvent, RolloutFinishedEvent, RolloutProgressEvent, RolloutStartedEvent } from './events.js';
