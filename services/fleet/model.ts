import type { Database } from '../infra/db/schema.js';
import { z } from 'zod';
import type { Selectable } from 'kysely';

import { type OutputLayout } from '../../protocol/envelope.js';
import { type CallContext } from '../../core/context.js';

export const tagSchema = z.string().trim().min(1).max(100);

/** States of a rollout; `completed`, `rolled_back` and `failed` are final. */
export const ROLLOUT_STATES = [
  'pending',
  'canary',
  'waves',
  'completed',
  'paused',
  'rolled_back',
  'failed',
] as const;

export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** The final states of a rollout: nothing changes a rollout in one of them. */
export const FINAL_ROLLOUT_STATES: readonly RolloutState[] = ['completed', 'rolled_back', 'failed'];

/** True once a rollout can no longer change. */
export function isFinalRollout(state: string): boolean {
  return (FINAL_ROLLOUT_STATES as readonly string[]).includes(state);
}

/** States of one device's deployment within a rollout. */
export const DEPLOYMENT_STATES = ['pending', 'sent', 'healthy', 'failed', 'rolled_back', 'skipped'] as const;

export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/**
 * Devices of a rolled-back rollout that are on their previous model: those sent back
 * (`rolled_back`) and those never reached (`skipped`). Zero while the rollout is not rolled back.
 */
export function devicesRolledBack(r: { state: string; devices: { state: DeploymentState }[] }): number {
  if (r.state !== 'rolled_back') return 0;
  return r.devices.filter((d) => d.state === 'rolled_back' || d.state === 'skipped').length;
}

/** What the rollout needs of a model version (the registry's `ModelVersion` satisfies it). */
export interface RolloutModelVersion {
  id: string;
  name: string;
  version: number;
  ref: string;
  model: { key: string; sha256: string; size: number; layout: OutputLayout; inputSize: number };
  classNames: string[];
}

/** The one thing rollouts need from the registry (`ModelRegistry` satisfies it). */
export interface RolloutModels {
  /** Resolves `name@N`, `name@stage`, `name` or an `mv_…` id within the caller's project. */
  get(ctx: CallContext, ref: string): Promise<RolloutModelVersion>;
}

/** The dry run shown before approval: devices, waves, gates and the offline policy. */
export interface RolloutPlan {
  model: { versionId: string; ref: string; sha256: string; size: number };
  target: DeviceTarget;
  strategy: RolloutStrategy;
  gates: RolloutGates;
  offline: OfflinePolicy;
  waves: PlannedWave[];
  devices: PlannedDevice[];
  /** Readable lines: the plan as a person reads it. */
  summary: string[];
  warnings: string[];
}

/** One device's progress in a rollout. */
export interface DeploymentStatus {
  deploymentId: string;
  deviceId: string;
  name: string;
  wave: number;
  state: DeploymentState;
  /** Last state the device reported (`downloading`, `loading`, `healthy`, …) or `offline` while waiting. */
  deviceState: string | null;
  message: string | null;
  online: boolean;
  previousModelVersionId: string | null;
  baselineConfidence: number | null;
  /** Mean top confidence over heartbeats on the new model. */
  meanConfidence: number | null;
  /** Mean p95 latency over heartbeats on the new model. */
  meanLatencyP95Ms: number | null;
  heartbeats: number;
  waitingSince: number | null;
  sentAt: number | null;
  healthyAt: number | null;
  verifiedAt: number | null;
  finishedAt: number | null;
}

/** A rollout with per-device progress. */
export interface RolloutStatus {
  id: string;
  projectId: string;
  model: { versionId: string; ref: string; name: string };
  target: DeviceTarget;
  strategy: RolloutStrategy;
  gates: RolloutGates;
  offline: OfflinePolicy;
  state: RolloutState;
  pausedFrom: RolloutState | null;
  /** 0 is the canary. */
  currentWave: number;
  waveCount: number;
  reason: string | null;
  createdBy: string;
  threadId: string | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Deployments per state. */
  counts: Record<DeploymentState, number>;
  devices: DeploymentStatus[];
}

/** The figures of one heartbeat, kept a day for the device page's sparklines. */
export interface DeviceSample {
  at: number;
  fps: number;
  latencyP95Ms: number;
  meanTopConfidence: number | null;
}

/** Device ids the platform accepts: what a device reports as `deviceId`. */
export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Device states a heartbeat reports. */
export type DeviceState = Selectable<Database['devices']>['state'];

/** Health of one device, derived from its last heartbeat. */
export interface DeviceHealth {
  /** `offline` (no heartbeat within the window), `error`, `warn` (issues) or `ok`. */
  status: 'ok' | 'warn' | 'error' | 'offline';
  online: boolean;
  /** Milliseconds since the last heartbeat. */
  lastHeartbeatAgoMs: number;
  /** Readable problems, e.g. "temperature 86 °C is above 80 °C". */
  issues: string[];
}

/** A device as people, tools and the rollout controller see it. */
export interface Device {
  id: string;
  projectId: string;
  name: string;
  tags: string[];
  hardware: string;
  runtime: Record<string, string>;
  /** Execution provider in use, e.g. `tensorrt`, `cuda`, `cpu`. */
  provider: string;
  modelVersionId: string | null;
  previousModelVersionId: string | null;
  state: DeviceState;
  fps: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  meanTopConfidence: number | null;
  cpuPercent: number;
  memoryMb: number;
  temperatureC: number | null;
  buildProgress: number | null;
  firstSeenAt: number;
  lastHeartbeatAt: number;
  health: DeviceHealth;
}

/** A group of devices: a tag query or an explicit list. */
export type DeviceTarget = { tag: string } | { deviceIds: string[] };

/** Limits the health summary flags. */
export interface HealthThresholds {
  /** Above this temperature a device is flagged (default 80 °C). */
  maxTemperatureC: number;
  /** Above this p95 inference latency a device is flagged (default 200 ms). */
  maxLatencyP95Ms: number;
}

/** Zod schema of a device group. */
export const deviceTargetSchema = z.union([
  z.object({ tag: tagSchema }).strict(),
  z
    .object({ deviceIds: z.array(z.string().regex(DEVICE_ID, 'not a device id')).min(1).max(10_000) })
    .strict(),
]);

/** How a rollout spreads: `canary` devices first, then waves up to cumulative percentages of the group. */
export const rolloutStrategySchema = z
  .object({
    canary: z.number().int().min(1).max(1000).default(1).describe('devices in the canary wave'),
    waves: z
      .array(z.number().min(1).max(100))
      .min(1)
      .max(20)
      .default([100])
      .describe('cumulative share of the group (percent) reached after each wave; the last must be 100'),
  })
  .refine((s) => s.waves[s.waves.length - 1] === 100, {
    message: 'the last wave must reach 100 percent',
    path: ['waves'],
  })
  .refine((s) => s.waves.every((w, i) => i === 0 || w > s.waves[i - 1]!), {
    message: 'wave percentages must increase',
    path: ['waves'],
  });

export type RolloutStrategy = z.infer<typeof rolloutStrategySchema>;

/** What must hold on each device before the rollout moves on. */
export const rolloutGatesSchema = z.object({
  healthTimeoutMs: z
    .number()
    .int()
    .min(1000)
    .max(24 * 3600_000)
    .default(10 * 60_000)
    .describe('a device must report the model loaded and healthy within this time of the command'),
  maxLatencyP95Ms: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('p95 inference latency bound, or null for no latency gate'),
  confidenceMargin: z
    .number()
    .min(0)
    .max(1)
    .nullable()
    .default(0.05)
    .describe(
      'mean top confidence may be at most this much below the previous model, or null for no confidence gate',
    ),
  minHeartbeats: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(3)
    .describe('heartbeats on the new model the confidence and latency gates wait for'),
  observeMs: z
    .number()
    .int()
    .min(0)
    .max(24 * 3600_000)
    .default(5 * 60_000)
    .describe('after this time healthy, the gates decide on the heartbeats seen so far'),
});

export type RolloutGates = z.infer<typeof rolloutGatesSchema>;

/** What happens to a device that is offline when its wave starts. */
export const offlinePolicySchema = z.object({
  waitMs: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3600_000)
    .default(10 * 60_000)
    .describe('how long to wait for an offline device to come back'),
  action: z
    .enum(['skip', 'fail'])
    .default('skip')
    .describe('after the wait: skip the device, or fail the rollout'),
});

export type OfflinePolicy = z.infer<typeof offlinePolicySchema>;

/** Input of `RolloutService.plan` and `start`. */
export const rolloutInputSchema = z.object({
  model: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .describe('model version: `name@N`, `name@production`, or an `mv_…` id'),
  target: deviceTargetSchema.describe('the devices: { tag } or { deviceIds }'),
  strategy: rolloutStrategySchema.optional(),
  gates: rolloutGatesSchema.partial().optional(),
  offline: offlinePolicySchema.partial().optional(),
  threadId: z.string().min(1).max(191).optional(),
});

export type RolloutInput = z.input<typeof rolloutInputSchema>;

/** One device in a plan. */
export interface PlannedDevice {
  deviceId: string;
  name: string;
  /** 0 = canary, 1.. = waves. */
  wave: number;
  online: boolean;
  currentModelVersionId: string | null;
  /** `skip` when the device already runs the version. */
  action: 'deploy' | 'skip';
  note?: string;
}

/** One wave of a plan. */
export interface PlannedWave {
  index: number;
  label: string;
  /** Share of the group reached once this wave is done. */
  cumulativePercent: number;
  deviceIds: string[];
}

/** `90 s`, `5 min`, `2 h`. */
export function formatDuration(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
