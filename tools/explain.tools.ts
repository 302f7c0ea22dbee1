import { z } from 'zod';
import { defineTool } from './define.js';

const explanation = z.object({
  text: z.string().describe('the explanation in plain words'),
  facts: z.record(z.string(), z.unknown()).describe('the figures the explanation is built from'),
});

const fmt = (n: number | undefined | null) => (typeof n === 'number' ? n.toFixed(3) : 'n/a');
const minutes = (ms: number) =>
  ms < 90_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;

function headline(metrics: Record<string, number> | null | undefined): string {
  if (!metrics) return 'no metrics reported';
  const map50 = metrics.mAP50 ?? metrics.map50;
  const map5095 = metrics.mAP50_95 ?? metrics['mAP50-95'] ?? metrics.map50_95;
  const parts = [`mAP50 ${fmt(map50)}`];
  if (map5095 !== undefined) parts.push(`mAP50-95 ${fmt(map5095)}`);
  if (metrics.precision !== undefined) parts.push(`precision ${fmt(metrics.precision)}`);
  if (metrics.recall !== undefined) parts.push(`recall ${fmt(metrics.recall)}`);
  return parts.join(', ');
}

/** Explains a training run in plain words. */
export const explainRunTool = defineTool({
  name: 'explain_run',
  title: 'Explain a training run',
  description:
    'Explain a training job in plain words: what was trained on which data with which settings, how it went epoch by epoch, and what came out.',
  input: z.object({ jobId: z.string().min(1).max(64).describe('training job id') }),
  output: explanation,
  risk: 'read',
  idempotent: true,
  async run(ctx, { jobId }) {
    const training = ctx.services.training;
    const job = await training.get(ctx, jobId);
    const epochs = await training.metrics(ctx, jobId);
    const sentences = [
      `Job ${job.id} trained "${job.name}" on ${job.dataset} with the ${job.config.backend} trainer (${job.config.model}, ${job.config.epochs} epochs at ${job.config.imgsz} px, batch ${job.config.batch}).`,
    ];
    if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') {
      const took =
        job.finishedAt !== null && job.startedAt !== null
          ? ` after ${minutes(job.finishedAt - job.startedAt)}`
          : '';
      sentences.push(`It ${job.status}${took}${job.message ? ` (${job.message})` : ''}.`);
    } else {
      sentences.push(`It is ${job.status}: ${job.epochsDone} of ${job.epochs} epochs done.`);
    }
    const key = (m: Record<string, number>) => m.mAP50 ?? m.map50;
    const scored = epochs.filter((e) => key(e.metrics) !== undefined);
    if (scored.length > 0) {
      const first = scored[0]!;
      const best = scored.reduce((a, b) => (key(b.metrics)! > key(a.metrics)! ? b : a));
      const last = scored[scored.length - 1]!;
      sentences.push(
        `mAP50 went from ${fmt(key(first.metrics))} after epoch ${first.epoch} to ${fmt(key(last.metrics))} after epoch ${last.epoch}; the best was ${fmt(key(best.metrics))} at epoch ${best.epoch}.`,
      );
    }
    let modelRef: string | null = null;
    if (job.modelVersionId !== null && ctx.services.models !== undefined) {
      const v = await ctx.services.models.get(ctx, job.modelVersionId);
      modelRef = v.ref;
      sentences.push(`The result is registered as ${v.ref} (${headline(v.metrics)}).`);
    }
    return {
      text: sentences.join(' '),
      facts: {
        jobId: job.id,
        status: job.status,
        dataset: job.dataset,
        config: job.config,
        epochs: epochs.length,
        lastMetrics: job.lastMetrics,
        modelVersion: modelRef,
      },
    };
  },
});

/** Explains a model version in plain words. */
export const explainModelTool = defineTool({
  name: 'explain_model',
  title: 'Explain a model version',
  description:
    'Explain a model version in plain words: where it came from (data, settings, job), how good it is overall and per class, its stage, and how it compares with the production version.',
  input: z.object({
    modelVersion: z.string().min(1).max(200).describe('model version: id, name@N or name@stage'),
  }),
  output: explanation,
  risk: 'read',
  idempotent: true,
  async run(ctx, { modelVersion }) {
    const registry = ctx.services.models;
    const v = await registry.get(ctx, modelVersion);
    const config = v.lineage.config as Record<string, unknown>;
    const sentences = [
      `${v.ref} detects ${v.classNames.join(', ')} at ${v.model.inputSize} px input.`,
      `It was trained${v.lineage.jobId ? ` by job ${v.lineage.jobId}` : ''} on ${v.lineage.dataset ?? 'an unrecorded dataset'}${config.backend ? ` with the ${String(config.backend)} trainer for ${String(config.epochs)} epochs` : ''}.`,
      `Overall: ${headline(v.metrics)}.`,
    ];
    const weakest = Object.entries(v.perClass)
      .map(([cls, m]) => ({ cls, map: m.mAP50 ?? m.map50 ?? m.ap50 }))
      .filter((x): x is { cls: string; map: number } => typeof x.map === 'number')
      .sort((a, b) => a.map - b.map)[0];
    if (weakest !== undefined)
      sentences.push(`Its weakest class is "${weakest.cls}" (mAP50 ${fmt(weakest.map)}).`);
    sentences.push(
      v.stages.length > 0
        ? `It is the ${v.stages.join(' and ')} version of ${v.name}.`
        : `No stage points at it yet.`,
    );
    let comparedWith: string | null = null;
    if (!v.stages.includes('production')) {
      const production = await registry.get(ctx, `${v.name}@production`).catch(() => undefined);
      if (production !== undefined) {
        const c = await registry.compare(ctx, production.id, v.id);
        const m = c.metrics.find((x) => x.metric === 'mAP50' || x.metric === 'map50');
        comparedWith = production.ref;
        if (m?.delta !== null && m?.delta !== undefined) {
          sentences.push(
            `Against production ${production.ref}, mAP50 is ${m.delta >= 0 ? 'up' : 'down'} by ${fmt(Math.abs(m.delta))}${c.sameDataset ? ' on the same dataset' : ' (different datasets, so compare with care)'}.`,
          );
        }
      }
    }
    return {
      text: sentences.join(' '),
      facts: {
        ref: v.ref,
        metrics: v.metrics,
        stages: v.stages,
        dataset: v.lineage.dataset,
        jobId: v.lineage.jobId,
        comparedWith,
      },
    };
  },
});
