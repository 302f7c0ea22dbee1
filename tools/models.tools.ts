import { z } from 'zod';
import type { ModelEvaluation } from '../services/models/model.js';
import type { ModelVersion } from '../services/models/model.js';
import { defineTool } from './define.js';

const modelVersion = z
  .string()
  .min(1)
  .max(200)
  .describe('model version: id (mv_…), name@N, name@production|staging|candidate, or a name (its latest)');

const versionSummary = z.object({
  id: z.string().describe('version id'),
  ref: z.string().describe('name@version'),
  stages: z.array(z.string()).describe('stages pointing at it'),
  metrics: z.record(z.string(), z.number()).describe('overall metrics, e.g. mAP50'),
  dataset: z.string().nullable().describe('dataset@version it was trained on'),
  createdAt: z.string().describe('when registered, ISO 8601'),
});

function summary(v: ModelVersion): z.infer<typeof versionSummary> {
  return {
    id: v.id,
    ref: v.ref,
    stages: v.stages,
    metrics: v.metrics,
    dataset: v.lineage.dataset,
    createdAt: new Date(v.createdAt).toISOString(),
  };
}

/** Lists registered model versions. */
export const listModelsTool = defineTool({
  name: 'list_models',
  title: 'List model versions',
  description:
    'List registered model versions, newest first, with stages and headline metrics; optionally of one model name or stage.',
  input: z.object({
    name: z.string().min(1).max(100).optional().describe('only versions of this model name'),
    stage: z
      .enum(['candidate', 'staging', 'production'])
      .optional()
      .describe('only the version at this stage'),
    limit: z.number().int().min(1).max(100).default(20).describe('how many'),
  }),
  output: z.object({ versions: z.array(versionSummary).describe('versions, newest first') }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    return { versions: (await ctx.services.models.list(ctx, input)).map(summary) };
  },
});

/** Shows one model version with lineage. */
export const describeModelTool = defineTool({
  name: 'describe_model',
  title: 'Describe a model version',
  description:
    'Show a model version: metrics overall and per class, classes, input size, stages, artifacts with sha256, and lineage (dataset version, training config, job, runner).',
  input: z.object({ modelVersion }),
  output: versionSummary.extend({
    classNames: z.array(z.string()).describe('classes it detects'),
    inputSize: z.number().describe('input size in pixels'),
    perClass: z.record(z.string(), z.record(z.string(), z.number())).describe('class → metric → value'),
    jobId: z.string().nullable().describe('training job that produced it'),
    config: z.record(z.string(), z.unknown()).describe('training configuration'),
    artifacts: z
      .array(
        z.object({
          name: z.string().describe('file'),
          sha256: z.string().describe('checksum'),
          size: z.number().describe('bytes'),
        }),
      )
      .describe('stored files'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const v = await ctx.services.models.get(ctx, input.modelVersion);
    return {
      ...summary(v),
      classNames: v.classNames,
      inputSize: v.model.inputSize,
      perClass: v.perClass,
      jobId: v.lineage.jobId,
      config: v.lineage.config as Record<string, unknown>,
      artifacts: v.artifacts.map((a) => ({ name: a.name, sha256: a.sha256, size: a.size })),
    };
  },
});

/** Compares two versions metric by metric. */
export const compareModelsTool = defineTool({
  name: 'compare_models',
  title: 'Compare model versions',
  description:
    'Compare two model versions metric by metric (delta = b − a), overall and per class, and say whether they share dataset and classes.',
  input: z.object({ a: modelVersion, b: modelVersion }),
  output: z.object({
    a: z.string().describe('first version, name@N'),
    b: z.string().describe('second version, name@N'),
    metrics: z
      .array(
        z.object({
          metric: z.string().describe('metric'),
          a: z.number().nullable().describe('value of a'),
          b: z.number().nullable().describe('value of b'),
          delta: z.number().nullable().describe('b − a'),
        }),
      )
      .describe('overall metrics'),
    sameDataset: z.boolean().describe('trained on the same dataset version'),
    sameClasses: z.boolean().describe('same class list'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const c = await ctx.services.models.compare(ctx, input.a, input.b);
    return {
      a: c.a.ref,
      b: c.b.ref,
      metrics: c.metrics,
      sameDataset: c.sameDataset,
      sameClasses: c.sameClasses,
    };
  },
});

/** Points a stage at a version (production is critical). */
export const promoteModelTool = defineTool({
  name: 'promote_model',
  title: 'Promote a model version',
  description:
    'Point a stage (candidate, staging or production) of the model name at this version. Promoting to production changes what deployments use by default.',
  input: z.object({
    modelVersion,
    stage: z.enum(['candidate', 'staging', 'production']).describe('stage to point at the version'),
  }),
  output: z.object({
    ref: z.string().describe('the promoted version'),
    stage: z.string().describe('the stage'),
    previous: z.string().nullable().describe('version the stage pointed at before'),
  }),
  risk: 'critical',
  // its service records the promotion under the approval's idempotency key, so a crash-interrupted run is re-run safely
  resumable: true,
  idempotent: true,
  async run(ctx, input) {
    const r = await ctx.services.models.promote(ctx, input.modelVersion, input.stage);
    return { ref: r.version.ref, stage: input.stage, previous: r.previous?.ref ?? null };
  },
});

const evaluationView = z.object({
  id: z.string().describe('evaluation id'),
  model: z.string().describe('evaluated version, name@N'),
  dataset: z.string().describe('dataset version evaluated on, name@N'),
  split: z.string().describe('split evaluated: train, val or test'),
  images: z.number().describe('images evaluated'),
  imagesTotal: z.number().describe('images in the split (more than images when capped by maxImages)'),
  mAP50: z.number().describe('COCO mAP at IoU 0.5'),
  mAP50_95: z.number().describe('COCO mAP averaged over IoU 0.5:0.95'),
  precision: z.number().describe('precision at the conf threshold (IoU 0.5)'),
  recall: z.number().describe('recall at the conf threshold (IoU 0.5)'),
  conf: z.number().describe('operating confidence threshold for precision and recall'),
  perClass: z
    .array(
      z.object({
        className: z.string().describe('class'),
        instances: z.number().describe('ground-truth boxes'),
        ap50: z.number().nullable().describe('AP at IoU 0.5; null without ground truth'),
        ap50_95: z.number().nullable().describe('AP over IoU 0.5:0.95; null without ground truth'),
        precision: z.number().describe('precision at conf'),
        recall: z.number().describe('recall at conf'),
      }),
    )
    .describe('per-class results'),
  ignoredModelClasses: z
    .array(z.string())
    .describe('model classes the dataset lacks; their detections were left out'),
  durationMs: z.number().describe('wall time of the evaluation in milliseconds'),
  perImageMs: z.number().describe('mean inference time per image in milliseconds'),
  by: z.string().describe('who ran it'),
  finishedAt: z.string().describe('when it finished, ISO 8601'),
});

function evaluationSummary(e: ModelEvaluation): z.infer<typeof evaluationView> {
  return {
    id: e.id,
    model: e.model,
    dataset: e.dataset,
    split: e.split,
    images: e.images,
    imagesTotal: e.imagesTotal,
    ...e.metrics,
    conf: e.conf,
    perClass: e.perClass.map(({ className, instances, ap50, ap50_95, precision, recall }) => ({
      className,
      instances,
      ap50,
      ap50_95,
      precision,
      recall,
    })),
    ignoredModelClasses: e.settings.ignoredModelClasses,
    durationMs: e.timing.totalMs,
    perImageMs: e.timing.perImageMs,
    by: e.createdBy,
    finishedAt: new Date(e.finishedAt).toISOString(),
  };
}

/** Evaluates a model version on a dataset split and records the result. */
export const evaluateModelTool = defineTool({
  name: 'evaluate_model',
  title: 'Evaluate a model version',
  description:
    "Run a model version on a dataset split (the test split of the dataset version it was trained on by default) with the real inference pipeline and report COCO mAP50, mAP50-95, per-class AP, and precision/recall at confidence 0.25. Use it to check a model before promoting or deploying it, or on newer data by naming a dataset. The result is kept in the version's evaluation history.",
  input: z.object({
    modelVersion,
    split: z
      .enum(['train', 'val', 'test'])
      .default('test')
      .describe('which split of the dataset to evaluate on'),
    dataset: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe(
        'dataset to evaluate on, name (its latest version) or name@N; the training dataset version when omitted',
      ),
    maxImages: z
      .number()
      .int()
      .min(1)
      .max(5000)
      .optional()
      .describe('evaluate at most this many images of the split (500 when omitted)'),
  }),
  output: evaluationView,
  risk: 'write',
  // its service records what it creates under the approval's idempotency key, so a crash-interrupted run is re-run safely
  resumable: true,
  idempotent: false,
  async run(ctx, input) {
    // One progress report per percent at most: a 5000-image evaluation must not flood sockets and MCP.
    let reported = -1;
    const e = await ctx.services.evaluations.evaluate(ctx, input, (p) => {
      const percent = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 0;
      if (percent === reported && p.done !== p.total) return;
      reported = percent;
      ctx.onProgress?.({
        message: `evaluated ${p.done}/${p.total} images`,
        ...(p.total > 0 ? { fraction: p.done / p.total } : {}),
        data: { done: p.done, total: p.total },
      });
    });
    return evaluationSummary(e);
  },
});

/** Lists the recorded evaluations of a model version. */
export const listEvaluationsTool = defineTool({
  name: 'list_evaluations',
  title: 'List evaluations of a model version',
  description:
    'Show the evaluations recorded for a model version, newest first: dataset version, split, mAP50, mAP50-95, precision, recall and per-class AP of each run.',
  input: z.object({ modelVersion, limit: z.number().int().min(1).max(100).default(10).describe('how many') }),
  output: z.object({ evaluations: z.array(evaluationView).describe('evaluations, newest first') }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    return {
      evaluations: (await ctx.services.evaluations.list(ctx, input.modelVersion, { limit: input.limit })).map(
        evaluationSummary,
      ),
    };
  },
});

/** The model-evaluation tools (registered when the evaluation service is present). */
export const evaluationTools = [evaluateModelTool, listEvaluationsTool];

/** Every model-registry tool. */
export const modelTools = [listModelsTool, describeModelTool, compareModelsTool, promoteModelTool];
