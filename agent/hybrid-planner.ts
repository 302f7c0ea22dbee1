import type { Plan } from './plan.js';
import type { PlanInput, Planner, ReplanInput } from './planner.js';
import type { LlmPlanner } from './llm-planner.js';
import { loadKnown } from './nlu/slots.js';
import type { RulesPlanner } from './rules-planner.js';

/** Options of the hybrid planner: the two planners it chooses between. */
export interface HybridPlannerOptions {
  rules: RulesPlanner;
  llm: LlmPlanner;
}

/**
 * Rules when they are sure (a clear best reading, or a safety answer), the LLM otherwise; the LLM's
 * plan passes the same safety layer (LlmPlanner applies it), so a question never plans a change
 * whichever planner answered. Re-plans after a rejection go to the rules when they can read the
 * reason, else to the LLM.
 */
export class HybridPlanner implements Planner {
  readonly kind = 'hybrid' as const;

  constructor(private readonly opts: HybridPlannerOptions) {}

  async plan(input: PlanInput): Promise<Plan> {
    const reading = this.opts.rules.read(input.message, await loadKnown(input.catalog, input.ctx));
    if (reading.confident) return reading.plan;
    input.ctx.log.debug(
      { intent: reading.best?.intent, score: reading.best?.score },
      'rules planner unsure; asking the LLM',
    );
    return this.opts.llm.plan(input);
  }

  async replan(input: ReplanInput): Promise<Plan> {
    const ruled = await this.opts.rules.replan(input);
    if (
      ruled.steps.length > 0 ||
      /^Stopped: step \d+ \([a-z_]+\) was rejected(?::[^"]*"[^"]*")?\.$/.test(ruled.reply ?? '') === false
    )
      return ruled;
    return this.opts.llm.replan(input);
  }
}
