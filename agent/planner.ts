import type { CallContext } from '../core/context.js';
import type { Plan } from './plan.js';

/** A dataset as planners see it: its name only (descriptions are data and never reach a planner). */
export interface CatalogDataset {
  name: string;
  /** Latest version number, when known. */
  version?: number;
}

/** A registered model version. */
export interface CatalogModelVersion {
  id: string;
  model: string;
  version: number;
  stage?: string | null;
  createdAt?: number;
}

/** A device, by id, name and tags. */
export interface CatalogDevice {
  id: string;
  name: string;
  tags: string[];
}

/** A training job. */
export interface CatalogJob {
  id: string;
  dataset: string;
  status: string;
  createdAt: number;
}

/** A rollout. */
export interface CatalogRollout {
  id: string;
  /** Tag or device list it targets, e.g. `line-3`. */
  target: string;
  status: string;
  modelVersionId: string;
  createdAt: number;
}

/** Names on the platform that planners check requests against, so they never invent one. */
export interface PlatformCatalog {
  datasets(ctx: CallContext): Promise<CatalogDataset[]>;
  modelVersions(ctx: CallContext): Promise<CatalogModelVersion[]>;
  devices(ctx: CallContext): Promise<CatalogDevice[]>;
  jobs(ctx: CallContext): Promise<CatalogJob[]>;
  rollouts(ctx: CallContext): Promise<CatalogRollout[]>;
}

/** One earlier exchange of the conversation. */
export interface ConversationTurn {
  message: string;
  report: string;
}

/** What a planner plans from. */
export interface PlanInput {
  message: string;
  ctx: CallContext;
  catalog: PlatformCatalog;
  history: ConversationTurn[];
  /** Receives LLM tokens as they stream (the graph forwards them as `agent.token` events). */
  onToken?: (text: string) => void;
}

/** A step a person rejected, for re-planning. */
export interface Rejection {
  index: number;
  tool: string;
  args: Record<string, unknown>;
  reason: string;
}

/** What a planner re-plans from: the plan so far, the steps already done, and the rejection. */
export interface ReplanInput extends PlanInput {
  plan: Plan;
  /** Number of steps already executed. */
  done: number;
  rejection: Rejection;
}

/** Turns a request into a plan; both the rules planner and the LLM planner implement it. */
export interface Planner {
  readonly kind: 'rules' | 'llm' | 'hybrid';
  plan(input: PlanInput): Promise<Plan>;
  /** A new plan for the remaining work after a rejection; no steps means stop. */
  replan(input: ReplanInput): Promise<Plan>;
}
