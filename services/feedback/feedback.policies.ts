import type { z } from 'zod';
import { requireRole, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { page } from '../../core/paging.js';
import type { FeedbackSettings } from './feedback.options.js';
import type { FeedbackRepository } from './feedback.repository.js';
import { retrainPolicySchema, type RetrainPlan, type RetrainPolicy, type RetrainProposal } from './model.js';

const HOUR = 3_600_000;

/** Retrain policies: set per model, checked on request, and proposals (plans) when one fires. They only ever propose. */
export class RetrainPolicies {
  constructor(
    private readonly o: FeedbackSettings,
    private readonly repo: FeedbackRepository,
  ) {}

  /** Sets (replaces) the retrain policy of a model. */
  async set(
    ctx: CallContext,
    modelName: string,
    policy: z.input<typeof retrainPolicySchema>,
  ): Promise<RetrainPolicy> {
    requireRole(ctx, 'operator', 'setting a retrain policy');
    const parsed = retrainPolicySchema.safeParse(policy);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `retrain policy is invalid: ${describeZodError(parsed.error)}`,
      );
    if (typeof modelName !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,99}$/.test(modelName))
      throw new PlatformError('invalid_input', `"${String(modelName)}" is not a model name`);
    if (this.o.models !== undefined) await this.o.models.get(ctx, modelName);
    else if (parsed.data.dataset === undefined)
      throw new PlatformError(
        'invalid_input',
        'name the dataset to extend (`dataset`); the registry is not available to find the training dataset',
      );
    const now = this.o.now();
    const values = { policy: JSON.stringify(parsed.data), updated_by: ctx.user.userId, updated_at: now };
    await this.o.db.transaction((trx) => this.repo.in(trx).savePolicy(ctx.projectId, modelName, values));
    return parsed.data;
  }

  /** Retrain policies of the caller's project by model name. */
  async list(ctx: CallContext): Promise<Record<string, RetrainPolicy>> {
    const rows = await this.repo.policies(ctx.projectId);
    return Object.fromEntries(rows.map((r) => [r.model_name, JSON.parse(r.policy) as RetrainPolicy]));
  }

  /**
   * Checks every policy of the caller's project and, for each that fires (outside its cool-down),
   * records a proposal and emits `feedback.retrain_proposed`. It never trains or deploys.
   */
  async evaluate(ctx: CallContext): Promise<RetrainProposal[]> {
    const rows = await this.repo.policies(ctx.projectId);
    const out: RetrainProposal[] = [];
    const now = this.o.now();
    for (const row of rows) {
      const policy = retrainPolicySchema.safeParse(JSON.parse(row.policy));
      if (!policy.success) {
        this.o.log.warn({ model: row.model_name }, 'stored retrain policy is invalid; set it again');
        continue;
      }
      const p = policy.data;
      const last = await this.repo.lastProposalAt(ctx.projectId, row.model_name);
      if (last !== undefined && now - last < p.cooldownHours * HOUR) continue;
      const waiting = await this.repo.waitingSampleIds(ctx.projectId, row.model_name);
      let trigger: RetrainProposal['trigger'] | undefined;
      let reason = '';
      if (p.minAcceptedSamples !== undefined && waiting.length >= p.minAcceptedSamples) {
        trigger = 'min_accepted_samples';
        reason = `${waiting.length} accepted feedback sample(s) wait for a dataset version (policy: at least ${p.minAcceptedSamples})`;
      } else if (p.confidenceDropOver !== undefined) {
        const c = p.confidenceDropOver;
        const recent = await this.repo.meanConfidence(ctx.projectId, c.tag, now - c.windowHours * HOUR, now);
        const before = await this.repo.meanConfidence(
          ctx.projectId,
          c.tag,
          now - 2 * c.windowHours * HOUR,
          now - c.windowHours * HOUR,
        );
        if (recent !== null && before !== null && before - recent > c.drop) {
          trigger = 'confidence_drop';
          reason = `mean top confidence on ${c.tag} fell from ${before.toFixed(3)} to ${recent.toFixed(3)} over ${c.windowHours} h (policy: a drop of more than ${c.drop})`;
        }
      }
      if (trigger === undefined) continue;
      const plan = await this.planFor(ctx, row.model_name, p, waiting, reason);
      if (plan === undefined) continue;
      const proposal: RetrainProposal = {
        id: newId('rp'),
        projectId: ctx.projectId,
        model: row.model_name,
        trigger,
        plan,
        createdAt: now,
      };
      await this.repo.insertProposal(proposal);
      this.o.log.info({ model: row.model_name, trigger }, 'retrain proposed; waiting for approval');
      this.o.events.emit({ type: 'feedback.retrain_proposed', projectId: ctx.projectId, at: now, proposal });
      out.push(proposal);
    }
    return out;
  }

  /** Proposals made for the caller's project, newest first. */
  async proposals(ctx: CallContext, opts: { limit?: number } = {}): Promise<RetrainProposal[]> {
    return this.repo.proposals(ctx.projectId, page(opts, { default: 20, max: 200 }).limit);
  }

  private async planFor(
    ctx: CallContext,
    model: string,
    p: RetrainPolicy,
    sampleIds: string[],
    reason: string,
  ): Promise<RetrainPlan | undefined> {
    let dataset = p.dataset;
    let config = p.config ?? null;
    if ((dataset === undefined || config === null) && this.o.models !== undefined) {
      try {
        const latest = await this.o.models.get(ctx, model);
        dataset ??= latest.lineage.datasetName ?? undefined;
        config ??= isRecord(latest.lineage.config) ? latest.lineage.config : null;
      } catch (err) {
        this.o.log.warn(
          { model, err: (err as Error).message },
          'retrain policy: model not found in the registry',
        );
      }
    }
    if (dataset === undefined) {
      this.o.log.warn({ model }, 'retrain policy fired but no dataset is known; set `dataset` in the policy');
      return undefined;
    }
    let from: string | null = null;
    if (this.o.models !== undefined) {
      const production = await this.o.models.get(ctx, `${model}@production`).catch(() => undefined);
      if (production !== undefined) from = `${model}@production`;
    }
    const margin = p.minImprovement;
    const steps = [
      ...(sampleIds.length > 0
        ? [`add the ${sampleIds.length} accepted feedback sample(s) to ${dataset} as a new version`]
        : []),
      `${from === null ? `train ${model} from scratch` : `fine-tune ${model} from ${from}`} on the newest version of ${dataset}${config === null ? '' : ' with the same configuration'}`,
      `evaluate the new version and ${from ?? 'the current one'} on the same test split`,
      `promote it to production and roll it out to the devices that run ${from ?? model} (canary first) only if its mAP50 is higher by at least ${margin}`,
    ];
    return { model, dataset, sampleIds, config, reason, from, minImprovement: margin, steps };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
