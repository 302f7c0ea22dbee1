import { z } from 'zod';
import { retrainPolicyFields, type RetrainPolicy, type RetrainProposal } from '../services/feedback/model.js';
import { PlatformError } from '../core/errors.js';
import { defineTool } from './define.js';

const modelName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,99}$/, 'a model name such as helmets')
  .describe('model name (without @version), e.g. helmets');

const policyView = z.object({
  model: z.string().describe('model name'),
  minAcceptedSamples: z
    .number()
    .nullable()
    .describe('fires when this many accepted feedback samples wait for a dataset version'),
  confidenceDropOver: z
    .object({
      tag: z.string().describe('device tag'),
      drop: z.number().describe('drop in mean top confidence that fires it'),
      windowHours: z.number().describe('window compared with the one before'),
    })
    .nullable()
    .describe('fires when the mean top confidence of devices with the tag drops'),
  dataset: z.string().nullable().describe("dataset the samples extend; null = the model's training dataset"),
  cooldownHours: z.number().describe('no new proposal within this many hours of the last'),
  minImprovement: z.number().describe('test mAP50 margin over production needed to promote'),
});

function policyOut(model: string, p: RetrainPolicy): z.infer<typeof policyView> {
  return {
    model,
    minAcceptedSamples: p.minAcceptedSamples ?? null,
    confidenceDropOver: p.confidenceDropOver ?? null,
    dataset: p.dataset ?? null,
    cooldownHours: p.cooldownHours,
    minImprovement: p.minImprovement,
  };
}

const proposalView = z.object({
  proposalId: z.string().describe('proposal id'),
  model: z.string().describe('model name'),
  trigger: z.string().describe('min_accepted_samples or confidence_drop'),
  reason: z.string().describe('why the policy fired'),
  dataset: z.string().describe('dataset the accepted samples extend'),
  samples: z.number().describe('accepted samples the new dataset version would add'),
  from: z
    .string()
    .nullable()
    .describe('version the retrain fine-tunes from (model@production), or null for from scratch'),
  minImprovement: z.number().nullable().describe('test mAP50 margin over production needed to promote'),
  steps: z
    .array(z.string())
    .describe('the plan, in order; every step that changes anything is approved on its own'),
  createdAt: z.string().describe('when it was proposed (ISO time)'),
});

function proposalOut(p: RetrainProposal): z.infer<typeof proposalView> {
  return {
    proposalId: p.id,
    model: p.model,
    trigger: p.trigger,
    reason: p.plan.reason,
    dataset: p.plan.dataset,
    samples: p.plan.sampleIds.length,
    from: p.plan.from ?? null,
    minImprovement: p.plan.minImprovement ?? null,
    steps: p.plan.steps,
    createdAt: new Date(p.createdAt).toISOString(),
  };
}

/** Sets (replaces) the retrain policy of a model. */
export const setRetrainPolicyTool = defineTool({
  name: 'set_retrain_policy',
  title: 'Set retrain policy',
  description:
    'Set (replace) when the platform proposes retraining a model: after enough accepted feedback samples, or when the mean confidence of devices with a tag drops. A proposal is a plan (new dataset version, fine-tune from production, evaluate, promote and roll out only if better by the margin); nothing runs until each step is approved.',
  // the policy's own fields (services/feedback/model.ts) but its training config, which stays the model's latest
  input: retrainPolicyFields.omit({ config: true }).extend({ model: modelName }),
  output: policyView,
  risk: 'write',
  idempotent: true,
  checkAfterInterruption:
    'list the policies (list_retrain_policies): the model shows the new policy or the old one',
  async run(ctx, input) {
    const { model, ...policy } = input;
    return policyOut(model, await ctx.services.retrain.setPolicy(ctx, model, policy));
  },
});

/** Lists the retrain policies of the project. */
export const listRetrainPoliciesTool = defineTool({
  name: 'list_retrain_policies',
  title: 'List retrain policies',
  description:
    'List the retrain policy of every model that has one: what fires a proposal, the dataset it extends and the promotion margin.',
  input: z.object({}),
  output: z.object({ policies: z.array(policyView).describe('policies by model name') }),
  risk: 'read',
  idempotent: true,
  async run(ctx) {
    const all = await ctx.services.retrain.policies(ctx);
    return { policies: Object.entries(all).map(([model, p]) => policyOut(model, p)) };
  },
});

/** Lists the retrain proposals policies made, newest first. */
export const listRetrainProposalsTool = defineTool({
  name: 'list_retrain_proposals',
  title: 'List retrain proposals',
  description:
    'List the retrain proposals the policies made, newest first: why each fired and its plan of steps (each approved on its own when carried out).',
  input: z.object({ limit: z.number().int().min(1).max(200).default(20).describe('how many') }),
  output: z.object({ proposals: z.array(proposalView).describe('proposals, newest first') }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    return {
      proposals: (await ctx.services.retrain.proposals(ctx, { limit: input.limit })).map(proposalOut),
    };
  },
});

/** Checks every policy now and records a proposal for each that fires. */
export const checkRetrainPoliciesTool = defineTool({
  name: 'check_retrain_policies',
  title: 'Check retrain policies now',
  description:
    'Check every retrain policy now (the platform also does this periodically) and record a proposal for each that fires outside its cool-down. It trains and deploys nothing.',
  input: z.object({}),
  output: z.object({ proposals: z.array(proposalView).describe('proposals made by this check') }),
  risk: 'write',
  idempotent: false,
  checkAfterInterruption:
    'list the proposals (list_retrain_proposals): a policy that fired shows one made now',
  async run(ctx) {
    return { proposals: (await ctx.services.retrain.evaluatePolicies(ctx)).map(proposalOut) };
  },
});

const versionRef = z.string().min(1).max(200);

/**
 * The "only if better" gate of a retrain plan: compares the recorded evaluations of a candidate and
 * the version it would replace on one dataset version's split. It reads the evaluation history (the
 * figures are never taken from its arguments) and changes nothing.
 */
export const checkPromotionGateTool = defineTool({
  name: 'check_promotion_gate',
  title: 'Check the promotion gate',
  description:
    'Compare the newest recorded evaluations of a candidate model version and the version it would replace (e.g. production) on the same dataset version and split, and say whether the candidate is better by at least the margin. Evaluate both first (evaluate_model). Changes nothing.',
  input: z.object({
    candidate: versionRef.describe('the new model version: name@N or mv_…'),
    baseline: versionRef.describe('the version it would replace: name@N, name@production or mv_…'),
    dataset: versionRef.describe('dataset version both were evaluated on, name@N'),
    split: z.enum(['train', 'val', 'test']).default('test').describe('split both were evaluated on'),
    minImprovement: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('mAP50 the candidate must gain over the baseline to pass (0.02 = two points)'),
  }),
  output: z.object({
    better: z.boolean().describe('true when the candidate beats the baseline by at least the margin'),
    candidate: z.string().describe('candidate version, name@N'),
    baseline: z.string().describe('baseline version, name@N'),
    candidateMAP50: z.number().describe("candidate's mAP50"),
    baselineMAP50: z.number().describe("baseline's mAP50"),
    improvement: z.number().describe('candidate minus baseline mAP50'),
    reason: z.string().describe('the decision in words'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const newest = async (ref: string) => {
      const all = await ctx.services.evaluations.list(ctx, ref, { limit: 100 });
      const e = all.find((x) => x.dataset === input.dataset && x.split === input.split);
      if (e === undefined)
        throw new PlatformError(
          'not_found',
          `${ref} has no evaluation on ${input.dataset} (${input.split}); evaluate it there first (evaluate_model)`,
        );
      return e;
    };
    const c = await newest(input.candidate);
    const b = await newest(input.baseline);
    if (c.model === b.model)
      throw new PlatformError(
        'invalid_input',
        `candidate and baseline are both ${c.model}; compare two versions`,
      );
    const cm = c.metrics.mAP50;
    const bm = b.metrics.mAP50;
    const improvement = cm - bm;
    // a tie never replaces what serves; a margin of 0 still asks for a gain
    const better = improvement > 0 && improvement >= input.minImprovement - 1e-9;
    const on = `on ${input.dataset} (${input.split})`;
    const diff = `${Math.abs(improvement).toFixed(3)} ${improvement >= 0 ? 'above' : 'below'} ${b.model} (${bm.toFixed(3)})`;
    const reason = better
      ? `${c.model} scores mAP50 ${cm.toFixed(3)} ${on}, ${diff}; the policy asks for at least ${input.minImprovement.toFixed(3)} more`
      : `${c.model} is not better: mAP50 ${cm.toFixed(3)} ${on}, ${diff}; the policy asks for at least ${input.minImprovement.toFixed(3)} more, so it is not promoted and nothing is rolled out`;
    return {
      better,
      candidate: c.model,
      baseline: b.model,
      candidateMAP50: cm,
      baselineMAP50: bm,
      improvement,
      reason,
    };
  },
});

/** Every retrain-policy tool. */
export const retrainTools = [
  setRetrainPolicyTool,
  listRetrainPoliciesTool,
  listRetrainProposalsTool,
  checkRetrainPoliciesTool,
  checkPromotionGateTool,
];
