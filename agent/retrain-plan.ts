import type { CallContext } from '../core/context.js';
import type { RetrainProposal } from '../services/feedback/model.js';
import type { ToolServices } from '../tools/services.js';
import type { Plan, PlanStep } from './plan.js';

type Services = Pick<ToolServices, 'models' | 'datasets' | 'fleet'>;

const TRAIN_FIELDS = ['backend', 'model', 'epochs', 'imgsz', 'batch'] as const;

/**
 * The one plan a retrain proposal becomes, run by the agent like any other: new dataset version from the
 * accepted feedback → fine-tune from production → evaluate both on one fixed test set → the gate → promote
 * and roll out to the devices that run production, those two only when the gate passed (`when`).
 */
export async function retrainPlan(
  ctx: CallContext,
  services: Services,
  proposal: RetrainProposal,
): Promise<Plan> {
  const p = proposal.plan;
  const steps: PlanStep[] = [];
  const add = (step: PlanStep) => steps.push(step) - 1;

  const production = await services.models.get(ctx, `${p.model}@production`).catch(() => undefined);
  // the fixed test set: the dataset version production was trained on, else the dataset as it is before the feedback joins
  const fixed =
    production?.lineage.datasetName != null && production.lineage.datasetVersion != null
      ? `${production.lineage.datasetName}@${production.lineage.datasetVersion}`
      : (await services.datasets.get(ctx, p.dataset)).ref;

  let trainOn: string = p.dataset;
  if (p.sampleIds.length > 0) {
    const made = add({
      tool: 'feedback_to_dataset',
      args: { dataset: p.dataset, sampleIds: p.sampleIds, note: `retrain proposal ${proposal.id}` },
      reason: `add the ${p.sampleIds.length} accepted feedback sample(s) to ${p.dataset} as a new version`,
    });
    trainOn = `$steps.${made}.output.ref`;
  }
  const config: Record<string, unknown> = {};
  for (const k of TRAIN_FIELDS) if (p.config?.[k] !== undefined) config[k] = p.config[k];
  const train = add({
    tool: 'start_training',
    args: {
      ...config,
      dataset: trainOn,
      name: p.model,
      ...(production !== undefined ? { from: production.ref } : {}),
    },
    reason:
      production !== undefined
        ? `fine-tune ${p.model} from production (${production.ref}) on the new data`
        : `train ${p.model} from scratch: it has no production version to start from`,
  });
  const candidate = `$steps.${train}.result.modelRef`;
  add({
    tool: 'evaluate_model',
    args: { modelVersion: candidate, dataset: fixed, split: 'test' },
    reason: `evaluate the new version on the fixed test set (${fixed}, test split)`,
  });
  if (production === undefined) {
    return {
      steps,
      reply: `${p.reason}. ${p.model} has no production version, so nothing is compared, promoted or rolled out.`,
    };
  }
  add({
    tool: 'evaluate_model',
    args: { modelVersion: production.ref, dataset: fixed, split: 'test' },
    reason: `evaluate production (${production.ref}) on the same test set`,
  });
  const gate = add({
    tool: 'check_promotion_gate',
    args: {
      candidate,
      baseline: production.ref,
      dataset: fixed,
      split: 'test',
      minImprovement: p.minImprovement ?? 0,
    },
    reason: `is the new version better than ${production.ref} by at least ${(p.minImprovement ?? 0).toFixed(3)} mAP50?`,
  });
  const onlyIfBetter = { ref: `$steps.${gate}.output.better`, otherwise: `$steps.${gate}.output.reason` };
  add({
    tool: 'promote_model',
    args: { modelVersion: candidate, stage: 'production' },
    reason: 'promote it to production (only if better)',
    when: onlyIfBetter,
  });
  const devices = (await services.fleet.list(ctx)).filter((d) => d.modelVersionId === production.id);
  if (devices.length > 0) {
    add({
      tool: 'start_rollout',
      args: { modelVersion: candidate, target: { devices: devices.map((d) => d.id) } },
      reason: `roll it out to the ${devices.length} device(s) that run ${production.ref}, canary first (only if better)`,
      when: onlyIfBetter,
    });
  }
  return { steps, reply: `Proposed because ${p.reason}.` };
}

/** Where a retrain plan runs: the agent runtime (`startPlan`). */
export interface PlanStarter {
  startPlan(
    ctx: CallContext,
    input: { message: string; plan: Plan; title?: string },
  ): Promise<{ id: string }>;
}

/** Turns a proposal into a conversation on its plan: every channel shows its plan and asks for each approval. */
export async function proposeRetrain(
  runtime: PlanStarter,
  ctx: CallContext,
  services: Services,
  proposal: RetrainProposal,
): Promise<string> {
  const plan = await retrainPlan(ctx, services, proposal);
  const view = await runtime.startPlan(ctx, {
    message: `retrain ${proposal.model} (proposal ${proposal.id}): ${proposal.plan.reason}`,
    title: `Retrain ${proposal.model}: ${proposal.plan.reason}`,
    plan,
  });
  return view.id;
}
