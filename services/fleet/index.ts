export { FleetService } from './fleet.service.js';
export { deviceSearchDoc, deviceSearchDocs } from './fleet.search.js';
export { formatDuration } from './model.js';
export { DEVICE_ID, deviceTargetSchema } from './model.js';
export type { FleetServiceOptions } from './fleet.service.js';
export type {
  Device,
  DeviceHealth,
  DeviceSample,
  DeviceState,
  DeviceTarget,
  HealthThresholds,
} from './model.js';
export { RolloutService } from './rollout.service.js';
export { DEPLOYMENT_STATES, ROLLOUT_STATES } from './model.js';
export type { RolloutServiceOptions } from './rollout.service.js';
export type {
  DeploymentState,
  DeploymentStatus,
  RolloutModels,
  RolloutModelVersion,
  RolloutPlan,
  RolloutState,
  RolloutStatus,
} from './model.js';
export { ROLLOUT_CONTROLLER_LOCK, RolloutController } from './rollout.controller.js';
export type { RolloutControllerOptions, TickResult } from './rollout.controller.js';
export { assignWaves } from './rollout.plan.js';
export {
  offlinePolicySchema,
  rolloutGatesSchema,
  rolloutInputSchema,
  rolloutStrategySchema,
} from './model.js';
export type {
  OfflinePolicy,
  PlannedDevice,
  PlannedWave,
  RolloutGates,
  RolloutInput,
  RolloutStrategy,
} from './model.js';
export type {
  DeviceUpdatedEvent,
  FleetEvent,
  RolloutFinishedEvent,
  RolloutProgressEvent,
  RolloutStartedEvent,
} from './events.js';
