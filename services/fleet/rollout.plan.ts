import { z } from 'zod';
import { deviceTargetSchema, type Device, type DeviceTarget } from './fleet.service.js';

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
  .refine((s) => s.waves[s.waves.length - 1] === 100, { message: 'the last wave must reach 100 percent', path: ['waves'] })
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
  maxLatencyP95Ms: z.number().positive().nullable().default(null).describe('p95 inference latency bound, or null for no latency gate'),
  confidenceMargin: z
    .number()
    .min(0)
    .max(1)
    .nullable()
    .default(0.05)
    .describe('mean top confidence may be at most this much below the previous model, or null for no confidence gate'),
  minHeartbeats: z.number().int().min(1).max(1000).default(3).describe('heartbeats on the new model the confidence and latency gates wait for'),
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
  action: z.enum(['skip', 'fail']).default('skip').describe('after the wait: skip the device, or fail the rollout'),
});
export type OfflinePolicy = z.infer<typeof offlinePolicySchema>;

/** Input of `RolloutService.plan` and `start`. */
export const rolloutInputSchema = z.object({
  model: z.string().trim().min(1).max(200).describe('model version: `name@N`, `name@production`, or an `mv_…` id'),
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

/** Splits the devices into a canary and waves: online devices first as canaries, then by name. */
export function assignWaves(
  devices: Device[],
  strategy: RolloutStrategy,
  modelVersionId: string,
): { devices: PlannedDevice[]; waves: PlannedWave[] } {
  const deploy = devices.filter((d) => d.modelVersionId !== modelVersionId);
  const skip = devices.filter((d) => d.modelVersionId === modelVersionId);
  const ordered = [...deploy].sort(
    (a, b) => Number(b.health.online) - Number(a.health.online) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id),
  );
  const total = ordered.length;
  const canary = Math.min(strategy.canary, total);
  const waves: PlannedWave[] = [{ index: 0, label: 'canary', cumulativePercent: total === 0 ? 100 : Math.round((canary / total) * 100), deviceIds: ordered.slice(0, canary).map((d) => d.id) }];
  let assigned = canary;
  for (const pct of strategy.waves) {
    const upTo = Math.max(assigned, Math.ceil((pct / 100) * total));
    if (upTo === assigned) continue;
    waves.push({ index: waves.length, label: `wave ${waves.length}`, cumulativePercent: pct, deviceIds: ordered.slice(assigned, upTo).map((d) => d.id) });
    assigned = upTo;
  }
  const waveOf = new Map<string, number>();
  for (const w of waves) for (const id of w.deviceIds) waveOf.set(id, w.index);
  const planned: PlannedDevice[] = ordered.map((d) => ({
    deviceId: d.id,
    name: d.name,
    wave: waveOf.get(d.id) ?? 0,
    online: d.health.online,
    currentModelVersionId: d.modelVersionId,
    action: 'deploy',
    ...(d.health.online ? {} : { note: 'offline now; the offline policy applies when its wave starts' }),
  }));
  for (const d of skip)
    planned.push({
      deviceId: d.id,
      name: d.name,
      wave: 0,
      online: d.health.online,
      currentModelVersionId: d.modelVersionId,
      action: 'skip',
      note: 'already runs this version',
    });
  return { devices: planned, waves };
}

/** A target as text: `tag line-3` or `devices a, b`. */
export function describeTarget(target: DeviceTarget): string {
  return 'tag' in target ? `tag ${target.tag}` : `devices ${target.deviceIds.join(', ')}`;
}
