import { z } from 'zod';
import type { Device, DeviceTarget } from '../services/fleet/model.js';
import { devicesRolledBack, type RolloutStatus } from '../services/fleet/model.js';
import { defineTool, type ToolContext } from './define.js';

const target = z
  .object({
    tag: z.string().min(1).max(100).optional().describe('every device with this tag, e.g. line-3'),
    devices: z.array(z.string().min(1)).min(1).max(500).optional().describe('explicit device ids'),
  })
  .refine(
    (t) => (t.tag === undefined) !== (t.devices === undefined),
    'give either a tag or a list of device ids',
  )
  .describe('which devices: a tag or explicit device ids');

const toTarget = (t: { tag?: string; devices?: string[] }): DeviceTarget =>
  t.tag !== undefined ? { tag: t.tag } : { deviceIds: t.devices ?? [] };
const rolloutId = z.string().min(1).max(64).describe('rollout id');

const deviceView = z.object({
  id: z.string().describe('device id'),
  name: z.string().describe('device name'),
  tags: z.array(z.string()).describe('tags'),
  hardware: z.string().describe('hardware, e.g. jetson-orin-nano'),
  state: z.string().describe('what the device is doing'),
  health: z.string().describe('ok, warn, error or offline'),
  issues: z.array(z.string()).describe('health problems, if any'),
  model: z.string().nullable().describe('model version it runs, name@N (null when none)'),
  modelVersionId: z.string().nullable().describe('id of the model version it runs'),
  fps: z.number().describe('frames per second'),
  latencyP95Ms: z.number().describe('p95 inference latency'),
});

/** name@N of each model version id the devices run (ids the registry no longer resolves keep the id). */
async function modelRefs(ctx: ToolContext, ids: Array<string | null>): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  const models = ctx.services.models;
  for (const id of new Set(ids.filter((x): x is string => x !== null))) {
    refs.set(
      id,
      models === undefined
        ? id
        : await models.get(ctx, id).then(
            (v) => v.ref,
            () => id,
          ),
    );
  }
  return refs;
}

const device = (d: Device, refs: Map<string, string>): z.infer<typeof deviceView> => ({
  id: d.id,
  name: d.name,
  tags: d.tags,
  hardware: d.hardware,
  state: d.state,
  health: d.health.status,
  issues: d.health.issues,
  model: d.modelVersionId === null ? null : (refs.get(d.modelVersionId) ?? d.modelVersionId),
  modelVersionId: d.modelVersionId,
  fps: d.fps,
  latencyP95Ms: d.latencyP95Ms,
});

const rolloutView = z.object({
  rolloutId: z.string().describe('rollout id'),
  model: z.string().describe('model version deployed, name@N'),
  state: z.string().describe('pending, canary, waves, completed, paused, rolled_back or failed'),
  wave: z.string().describe('current wave of all waves'),
  counts: z.record(z.string(), z.number()).describe('devices per deployment state'),
  devicesTotal: z.number().describe('devices in the rollout'),
  devicesUpdated: z.number().describe('devices verified on the new model'),
  devicesRolledBack: z
    .number()
    .describe('devices back on (or never taken off) their previous model, once the rollout is rolled back'),
  reason: z.string().nullable().describe('why it paused, rolled back or failed'),
});

const VERIFIED = new Set(['healthy']);
const rollout = (r: RolloutStatus): z.infer<typeof rolloutView> => ({
  rolloutId: r.id,
  model: r.model.ref,
  state: r.state,
  wave: `${r.currentWave} of ${r.waveCount}`,
  counts: r.counts,
  devicesTotal: r.devices.length,
  devicesUpdated: r.devices.filter((d) => VERIFIED.has(d.state)).length,
  devicesRolledBack: devicesRolledBack(r),
  reason: r.reason,
});

/** Lists devices, optionally by tag. */
export const listDevicesTool = defineTool({
  name: 'list_devices',
  title: 'List devices',
  description:
    'List edge devices (Jetsons) with their health, model version and speed, optionally only those with a tag such as line-3.',
  input: z.object({
    tag: z.string().min(1).max(100).optional().describe('only devices with this tag, e.g. line-3'),
  }),
  output: z.object({ devices: z.array(deviceView).describe('devices') }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const devices = await ctx.services.fleet.list(ctx, input.tag ? { tag: input.tag } : {});
    const refs = await modelRefs(
      ctx,
      devices.map((d) => d.modelVersionId),
    );
    return { devices: devices.map((d) => device(d, refs)) };
  },
});

/** Shows one device. */
export const describeDeviceTool = defineTool({
  name: 'describe_device',
  title: 'Describe a device',
  description:
    'Show one device: tags, hardware, runtime, model version (current and previous), health and performance.',
  input: z.object({ device: z.string().min(1).max(64).describe('device id') }),
  output: deviceView.extend({
    previousModel: z.string().nullable().describe('model version before the current one, name@N'),
    previousModelVersionId: z.string().nullable().describe('id of the model version before the current one'),
    provider: z.string().describe('execution provider, e.g. tensorrt'),
    runtime: z.record(z.string(), z.string()).describe('runtime versions'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const d = await ctx.services.fleet.get(ctx, input.device);
    const refs = await modelRefs(ctx, [d.modelVersionId, d.previousModelVersionId]);
    const previousModel =
      d.previousModelVersionId === null
        ? null
        : (refs.get(d.previousModelVersionId) ?? d.previousModelVersionId);
    return {
      ...device(d, refs),
      previousModel,
      previousModelVersionId: d.previousModelVersionId,
      provider: d.provider,
      runtime: d.runtime,
    };
  },
});

/** Dry run of a rollout. */
export const planRolloutTool = defineTool({
  name: 'plan_rollout',
  title: 'Plan a rollout',
  description:
    'Dry run of deploying a model version to devices: which devices, in which waves (canary first), with which gates, and warnings (offline devices). Changes nothing.',
  input: z.object({
    modelVersion: z.string().min(1).max(200).describe('model version: mv_… id, name@N or name@production'),
    target,
  }),
  output: z.object({
    summary: z.array(z.string()).describe('the plan as a person reads it'),
    warnings: z.array(z.string()).describe('what may go wrong'),
    devices: z.number().describe('devices to update'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const p = await ctx.services.rollouts.plan(ctx, {
      model: input.modelVersion,
      target: toTarget(input.target),
    });
    return {
      summary: p.summary,
      warnings: p.warnings,
      devices: p.devices.filter((d) => d.action === 'deploy').length,
    };
  },
});

/** Starts a rollout; the conversation waits until it ends. */
export const startRolloutTool = defineTool({
  name: 'start_rollout',
  title: 'Deploy a model version',
  description:
    'Deploy a model version to a device group: a canary device first, then waves, with health, latency and confidence gates and automatic rollback. The conversation waits until the rollout completes, rolls back or fails.',
  input: z.object({
    modelVersion: z.string().min(1).max(200).describe('model version: mv_… id, name@N or name@production'),
    target,
    canary: z.number().int().min(1).max(1000).optional().describe('devices in the canary wave (default 1)'),
  }),
  output: rolloutView,
  risk: 'critical',
  // its service records what it creates under the approval's idempotency key, so a crash-interrupted run is re-run safely
  resumable: true,
  idempotent: false,
  async run(ctx, input) {
    const r = await ctx.services.rollouts.start(ctx, {
      model: input.modelVersion,
      target: toTarget(input.target),
      threadId: ctx.threadId,
      ...(input.canary !== undefined ? { strategy: { canary: input.canary } } : {}),
    });
    return rollout(r);
  },
  waitFor: (out) => ({ kind: 'rollout', id: out.rolloutId }),
});

/** State of a rollout. */
export const rolloutStatusTool = defineTool({
  name: 'rollout_status',
  title: 'Rollout status',
  description:
    'Show where a rollout stands: state, wave, devices per state, devices updated, and the reason when paused or rolled back.',
  input: z.object({ rolloutId }),
  output: rolloutView,
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    return rollout(await ctx.services.rollouts.status(ctx, input.rolloutId));
  },
});

/** Pauses a rollout. */
export const pauseRolloutTool = defineTool({
  name: 'pause_rollout',
  title: 'Pause a rollout',
  description: 'Pause a rollout before its next wave; devices already updated keep the new model.',
  input: z.object({ rolloutId, reason: z.string().max(500).optional().describe('why') }),
  output: rolloutView,
  risk: 'write',
  checkAfterInterruption: "look at the rollout's state (rollout_status): paused or still running",
  idempotent: true,
  async run(ctx, input) {
    return rollout(await ctx.services.rollouts.pause(ctx, input.rolloutId, input.reason));
  },
});

/** Resumes a paused rollout. */
export const resumeRolloutTool = defineTool({
  name: 'resume_rollout',
  title: 'Resume a rollout',
  description: 'Resume a paused rollout from where it stopped.',
  input: z.object({ rolloutId }),
  output: rolloutView,
  risk: 'critical',
  checkAfterInterruption: "look at the rollout's state (rollout_status): resumed or still paused",
  idempotent: true,
  async run(ctx, input) {
    return rollout(await ctx.services.rollouts.resume(ctx, input.rolloutId));
  },
});

/** Rolls a rollout back. */
export const rollbackRolloutTool = defineTool({
  name: 'rollback_rollout',
  title: 'Roll back a rollout',
  description: 'Roll back a rollout: every device it touched goes back to its previous model version.',
  input: z.object({
    rolloutId,
    reason: z
      .string()
      .min(1)
      .max(500)
      .default('rolled back by a person')
      .describe('why, kept with the rollout'),
  }),
  output: rolloutView,
  risk: 'critical',
  checkAfterInterruption:
    "look at the rollout's state and each device's model (rollout_status, list_devices) to see whether the rollback went out",
  idempotent: true,
  async run(ctx, input) {
    return rollout(await ctx.services.rollouts.rollback(ctx, input.rolloutId, input.reason));
  },
});

/** Explains a rollout in plain words. */
export const explainRolloutTool = defineTool({
  name: 'explain_rollout',
  title: 'Explain a rollout',
  description:
    'Explain a rollout in plain words: what was deployed where, how the waves went, which gate stopped it if any.',
  input: z.object({ rolloutId }),
  output: z.object({
    text: z.string().describe('the explanation'),
    facts: z.record(z.string(), z.unknown()).describe('the figures it is built from'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const r = await ctx.services.rollouts.status(ctx, input.rolloutId);
    const v = rollout(r);
    const where =
      'tag' in r.target ? `devices tagged ${r.target.tag}` : `${r.target.deviceIds.length} listed devices`;
    const failed = r.devices.filter((d) => d.message !== null && !VERIFIED.has(d.state));
    const text = [
      `Rollout ${r.id} deploys ${r.model.ref} to ${where}: ${r.strategy.canary} canary device(s), then waves up to ${r.strategy.waves.join('%, ')}%.`,
      `It is ${r.state} at wave ${v.wave}; ${v.devicesUpdated} of ${v.devicesTotal} devices run the new model.`,
      ...(r.reason ? [`Reason: ${r.reason}.`] : []),
      ...failed.slice(0, 3).map((d) => `${d.name}: ${d.message}.`),
    ].join(' ');
    return { text, facts: { ...v, target: r.target, createdBy: r.createdBy } };
  },
});

/** Every fleet and rollout tool. */
export const fleetTools = [listDevicesTool, describeDeviceTool];
/** Every rollout tool. */
export const rolloutTools = [
  planRolloutTool,
  startRolloutTool,
  rolloutStatusTool,
  pauseRolloutTool,
  resumeRolloutTool,
  rollbackRolloutTool,
  explainRolloutTool,
];
