// size: 419 lines, at the ~400 bound: one in-memory stand-in platform for evaluations (its tools and state together).
import { z } from 'zod';
import { PlatformError } from '../core/errors.js';
import { EventBus, type DomainEventBase } from '../core/events.js';
import type { CallContext } from '../core/context.js';
import { defineTool, type AnyTool } from '../tools/define.js';
import type { WaitOutcome } from '../agent/state.js';
import type { WaitSource } from '../agent/runtime.js';
import type {
  CatalogDevice,
  CatalogJob,
  CatalogModelVersion,
  CatalogRollout,
  PlatformCatalog,
} from '../agent/planner.js';

/** A dataset of the simulated platform; `description` is free text and may say anything. */
export interface SimDataset {
  name: string;
  description: string;
  classes: string[];
  images: number;
}

/** An event of the simulated platform: a job or rollout ended. */
export interface SimEvent extends DomainEventBase {
  type: 'sim.job.ended' | 'sim.rollout.ended';
  id: string;
}

interface SimJob extends CatalogJob {
  epochs: number;
  modelVersionId?: string;
  map50?: number;
}

interface SimRollout extends CatalogRollout {
  devicesUpdated: number;
  devicesTotal: number;
}

/**
 * A simulated platform for evaluating the agent: datasets, model versions, devices, jobs and
 * rollouts in memory, with tools named and shaped like the real ones. Jobs and rollouts end only
 * when the evaluation (or test) says so, which is what durable waits are tested against.
 */
export class SimPlatform {
  readonly events = new EventBus<SimEvent>();
  readonly datasets: SimDataset[];
  readonly versions: CatalogModelVersion[];
  readonly devices: CatalogDevice[];
  readonly jobs: SimJob[] = [];
  readonly rollouts: SimRollout[] = [];
  /** Every mutating call the tools made, in order: what "nothing changed" is checked against. */
  readonly calls: Array<{ tool: string; args: Record<string, unknown> }> = [];
  private seq = 0;

  constructor(
    data: {
      datasets?: SimDataset[];
      versions?: CatalogModelVersion[];
      devices?: CatalogDevice[];
      jobs?: SimJob[];
      rollouts?: SimRollout[];
    } = {},
    readonly projectId = 'default',
  ) {
    this.datasets = data.datasets ?? [
      { name: 'helmets-demo', description: 'synthetic helmets', classes: ['helmet', 'head'], images: 200 },
      {
        name: 'helmets-v2',
        description: 'hard-hat photos from line 3',
        classes: ['helmet', 'head', 'person'],
        images: 1200,
      },
    ];
    this.versions = data.versions ?? [
      { id: 'mv_helmets_2', model: 'helmets', version: 2, stage: 'production', createdAt: 2 },
      { id: 'mv_helmets_3', model: 'helmets', version: 3, stage: 'candidate', createdAt: 3 },
    ];
    this.devices = data.devices ?? [
      { id: 'dev_l3_a', name: 'jetson-l3-a', tags: ['line-3', 'jetson'] },
      { id: 'dev_l3_b', name: 'jetson-l3-b', tags: ['line-3', 'jetson'] },
      { id: 'dev_l2_a', name: 'jetson-l2-a', tags: ['line-2', 'jetson'] },
    ];
    this.jobs.push(...(data.jobs ?? []));
    this.rollouts.push(...(data.rollouts ?? []));
  }

  /** Ends a training job; a success registers a new model version. */
  finishJob(id: string, ok = true, map50 = 0.81): void {
    const job = this.job(id);
    job.status = ok ? 'succeeded' : 'failed';
    if (ok) {
      const version =
        Math.max(0, ...this.versions.filter((v) => v.model === 'helmets').map((v) => v.version)) + 1;
      job.modelVersionId = `mv_helmets_${version}`;
      job.map50 = map50;
      this.versions.push({
        id: job.modelVersionId,
        model: 'helmets',
        version,
        stage: 'candidate',
        createdAt: Date.now(),
      });
    }
    this.events.emit({ type: 'sim.job.ended', projectId: this.projectId, at: Date.now(), id });
  }

  /** Ends a rollout. */
  finishRollout(id: string, ok = true): void {
    const rollout = this.rollout(id);
    rollout.status = ok ? 'completed' : 'rolled_back';
    rollout.devicesUpdated = ok ? rollout.devicesTotal : 0;
    this.events.emit({ type: 'sim.rollout.ended', projectId: this.projectId, at: Date.now(), id });
  }

  job(id: string): SimJob {
    const job = this.jobs.find((j) => j.id === id);
    if (job === undefined)
      throw new PlatformError(
        'not_found',
        `training job "${id}" not found; known jobs: ${this.jobs.map((j) => j.id).join(', ') || 'none'}`,
      );
    return job;
  }

  rollout(id: string): SimRollout {
    const r = this.rollouts.find((x) => x.id === id);
    if (r === undefined)
      throw new PlatformError(
        'not_found',
        `rollout "${id}" not found; known rollouts: ${this.rollouts.map((x) => x.id).join(', ') || 'none'}`,
      );
    return r;
  }

  dataset(name: string): SimDataset {
    const ds = this.datasets.find((d) => d.name === name);
    if (ds === undefined)
      throw new PlatformError(
        'not_found',
        `dataset "${name}" not found; known datasets: ${this.datasets.map((d) => d.name).join(', ')}`,
      );
    return ds;
  }

  nextId(prefix: string): string {
    this.seq += 1;
    return `${prefix}_${this.seq}`;
  }

  /** The catalog planners check names against. */
  catalog(): PlatformCatalog {
    return {
      datasets: async () => this.datasets.map((d) => ({ name: d.name })),
      modelVersions: async () => [...this.versions],
      devices: async () => [...this.devices],
      jobs: async () =>
        this.jobs.map(({ id, dataset, status, createdAt }) => ({ id, dataset, status, createdAt })),
      rollouts: async () =>
        this.rollouts.map(({ id, target, status, modelVersionId, createdAt }) => ({
          id,
          target,
          status,
          modelVersionId,
          createdAt,
        })),
    };
  }

  /** How waits on simulated jobs and rollouts end. */
  waitSources(): WaitSource[] {
    const idFrom = (type: SimEvent['type']) => (event: DomainEventBase) =>
      event.type === type ? (event as SimEvent).id : undefined;
    return [
      {
        kind: 'job',
        idFrom: idFrom('sim.job.ended'),
        check: async (_ctx: CallContext, id: string): Promise<WaitOutcome | undefined> => {
          const job = this.job(id);
          if (job.status !== 'succeeded' && job.status !== 'failed') return undefined;
          return {
            kind: 'job',
            id,
            ok: job.status === 'succeeded',
            status: job.status,
            summary:
              job.status === 'succeeded'
                ? `training ${id} succeeded (mAP50 ${job.map50})`
                : `training ${id} failed`,
            data:
              job.status === 'succeeded'
                ? { modelVersionId: job.modelVersionId, metrics: { map50: job.map50 } }
                : {},
          };
        },
      },
      {
        kind: 'rollout',
        idFrom: idFrom('sim.rollout.ended'),
        check: async (_ctx: CallContext, id: string): Promise<WaitOutcome | undefined> => {
          const r = this.rollout(id);
          if (!['completed', 'rolled_back', 'failed'].includes(r.status)) return undefined;
          return {
            kind: 'rollout',
            id,
            ok: r.status === 'completed',
            status: r.status,
            summary: `rollout ${id} ${r.status}`,
            data: { devicesUpdated: r.devicesUpdated, devicesTotal: r.devicesTotal },
          };
        },
      },
    ];
  }

  /** Tools named and shaped like the platform's, backed by this simulation. */
  tools(): AnyTool[] {
    const target = z
      .object({
        tag: z.string().optional().describe('device tag, e.g. line-3'),
        devices: z.array(z.string()).optional().describe('explicit device ids'),
      })
      .describe('which devices');
    const record = (tool: string, args: Record<string, unknown>) => this.calls.push({ tool, args });
    return [
      defineTool({
        name: 'list_datasets',
        title: 'List datasets',
        description: 'List the datasets of the project with their image counts.',
        input: z.object({}),
        output: z.object({
          datasets: z
            .array(
              z.object({ name: z.string().describe('name'), images: z.number().describe('image count') }),
            )
            .describe('datasets'),
        }),
        risk: 'read',
        idempotent: true,
        run: async () => ({ datasets: this.datasets.map((d) => ({ name: d.name, images: d.images })) }),
      }),
      defineTool({
        name: 'describe_dataset',
        title: 'Describe a dataset',
        description: 'Show one dataset: description, classes and image count.',
        input: z.object({ dataset: z.string().describe('dataset name') }),
        output: z.object({
          name: z.string().describe('name'),
          description: z.string().describe('free-text description'),
          classes: z.array(z.string()).describe('class names'),
          images: z.number().describe('image count'),
        }),
        risk: 'read',
        idempotent: true,
        run: async (_ctx, { dataset }) => ({ ...this.dataset(dataset) }),
      }),
      defineTool({
        name: 'start_training',
        title: 'Start training',
        description: 'Start a training job on a dataset; the conversation waits until it ends.',
        input: z.object({
          dataset: z.string().describe('dataset name'),
          epochs: z.number().int().min(1).max(1000).default(10).describe('epochs'),
          modelName: z.string().optional().describe('model name'),
        }),
        output: z.object({ jobId: z.string().describe('job id'), status: z.string().describe('job status') }),
        risk: 'write',
        idempotent: false,
        run: async (_ctx, input) => {
          this.dataset(input.dataset);
          record('start_training', input);
          const id = this.nextId('job');
          this.jobs.push({
            id,
            dataset: input.dataset,
            status: 'queued',
            createdAt: Date.now(),
            epochs: input.epochs,
          });
          return { jobId: id, status: 'queued' };
        },
        waitFor: (out) => ({ kind: 'job', id: out.jobId }),
      }),
      defineTool({
        name: 'training_status',
        title: 'Training status',
        description: 'Show the state of a training job.',
        input: z.object({ jobId: z.string().describe('job id') }),
        output: z.object({ jobId: z.string().describe('job id'), status: z.string().describe('status') }),
        risk: 'read',
        idempotent: true,
        run: async (_ctx, { jobId }) => ({ jobId, status: this.job(jobId).status }),
      }),
      defineTool({
        name: 'start_rollout',
        title: 'Deploy a model version',
        description:
          'Deploy a model version to devices (canary first); the conversation waits until it ends.',
        input: z.object({ modelVersion: z.string().describe('model version id'), target }),
        output: z.object({
          rolloutId: z.string().describe('rollout id'),
          devices: z.number().describe('devices targeted'),
        }),
        risk: 'critical',
        idempotent: false,
        run: async (_ctx, input) => {
          if (!this.versions.some((v) => v.id === input.modelVersion))
            throw new PlatformError('not_found', `model version "${input.modelVersion}" not found`);
          const devices = this.devices.filter((d) =>
            input.target.tag
              ? d.tags.includes(input.target.tag)
              : (input.target.devices ?? []).includes(d.id),
          );
          if (devices.length === 0) throw new PlatformError('invalid_input', 'the target matches no device');
          record('start_rollout', input);
          const id = this.nextId('rol');
          const targetName = input.target.tag ?? devices.map((d) => d.id).join(',');
          this.rollouts.push({
            id,
            target: targetName,
            status: 'canary',
            modelVersionId: input.modelVersion,
            createdAt: Date.now(),
            devicesUpdated: 0,
            devicesTotal: devices.length,
          });
          return { rolloutId: id, devices: devices.length };
        },
        waitFor: (out) => ({ kind: 'rollout', id: out.rolloutId }),
      }),
      defineTool({
        name: 'rollback_rollout',
        title: 'Roll back',
        description: 'Roll back a rollout: the devices it touched go back to their previous model.',
        input: z.object({
          rolloutId: z.string().describe('rollout id'),
          reason: z.string().optional().describe('why'),
        }),
        output: z.object({
          rolloutId: z.string().describe('rollout id'),
          status: z.string().describe('status'),
        }),
        risk: 'critical',
        idempotent: true,
        run: async (_ctx, input) => {
          const r = this.rollout(input.rolloutId);
          record('rollback_rollout', input);
          r.status = 'rolled_back';
          return { rolloutId: r.id, status: r.status };
        },
      }),
      defineTool({
        name: 'evaluate_model',
        title: 'Evaluate a model version',
        description:
          'Run a model version on a dataset split (test by default) and report mAP50, mAP50-95, precision and recall; the result is recorded.',
        input: z.object({
          modelVersion: z.string().describe('model version id'),
          split: z.enum(['train', 'val', 'test']).default('test').describe('split'),
          dataset: z
            .string()
            .optional()
            .describe('dataset name or name@N; the training dataset when omitted'),
          maxImages: z.number().int().min(1).max(5000).optional().describe('at most this many images'),
        }),
        output: z.object({
          model: z.string().describe('name@version'),
          split: z.string().describe('split'),
          mAP50: z.number().describe('mAP at IoU 0.5'),
        }),
        risk: 'write',
        idempotent: false,
        run: async (_ctx, input) => {
          const v = this.versions.find((x) => x.id === input.modelVersion);
          if (v === undefined)
            throw new PlatformError('not_found', `model version "${input.modelVersion}" not found`);
          if (input.dataset !== undefined) this.dataset(input.dataset.split('@')[0]!);
          record('evaluate_model', input);
          return { model: `${v.model}@${v.version}`, split: input.split, mAP50: 0.8 };
        },
      }),
      defineTool({
        name: 'list_models',
        title: 'List model versions',
        description: 'List registered model versions with their stage.',
        input: z.object({}),
        output: z.object({
          versions: z
            .array(z.object({ id: z.string().describe('id'), label: z.string().describe('name@version') }))
            .describe('versions'),
        }),
        risk: 'read',
        idempotent: true,
        run: async () => ({
          versions: this.versions.map((v) => ({ id: v.id, label: `${v.model}@${v.version}` })),
        }),
      }),
      defineTool({
        name: 'list_devices',
        title: 'List devices',
        description: 'List devices, optionally only those with a tag.',
        input: z.object({ tag: z.string().optional().describe('only devices with this tag') }),
        output: z.object({
          devices: z
            .array(z.object({ id: z.string().describe('id'), name: z.string().describe('name') }))
            .describe('devices'),
        }),
        risk: 'read',
        idempotent: true,
        run: async (_ctx, { tag }) => ({
          devices: this.devices
            .filter((d) => tag === undefined || d.tags.includes(tag))
            .map((d) => ({ id: d.id, name: d.name })),
        }),
      }),
    ];
  }
}
