import type { AgentRuntime } from '../agent/runtime.js';
import type { AccountService, ChatLinkService } from '../services/accounts/index.js';
import type { ApprovalService } from '../services/approvals/index.js';
import type { AuditLog } from '../services/audit/index.js';
import type { CallContext } from '../core/context.js';
import type { DatasetService, DatasetUploads } from '../services/datasets/index.js';
import type { DomainEventBase } from '../core/events.js';
import type { Cache } from '../services/infra/cache/port.js';
import type { FeedbackService } from '../services/feedback/index.js';
import type { FleetService, RolloutService } from '../services/fleet/index.js';
import type { ModelEvaluationService, ModelRegistry, ModelTryout } from '../services/models/index.js';
import type { TrainingService } from '../services/training/index.js';
import type { ToolRegistry, ToolServices } from '../tools/index.js';
import type { ToolContext } from '../tools/define.js';

/** The tool registry and the services its tools call, as the web layer runs them. */
export interface WebTools {
  registry: ToolRegistry;
  services: ToolServices;
}

/** Everything the web layer calls (app/wiring.ts hands it over; tests pass small fakes). */
export interface WebServices {
  accounts: AccountService;
  /** Chat identities linked to accounts (the bot acts as the linked account). */
  chatLinks: ChatLinkService;
  audit: AuditLog;
  approvals: ApprovalService;
  tools: WebTools;
  events: { on(listener: (event: DomainEventBase) => void): () => void };
  /** Shared key-value store (rate limits). */
  cache: Cache;
  /** URL people use to reach this server. */
  publicUrl: string;
  datasets: DatasetService;
  /** Browser uploads of datasets (staging for import_dataset). */
  uploads: DatasetUploads;
  training: TrainingService;
  models: ModelRegistry;
  evaluations: ModelEvaluationService;
  /** The model page's "try on an image". */
  tryouts: ModelTryout;
  fleet: FleetService;
  rollouts: RolloutService;
  feedback: FeedbackService;
  agent: AgentRuntime;
}

/** A tool context for `ctx` over the web layer's registry. */
export function toolContext(tools: WebTools, ctx: CallContext): ToolContext {
  return { ...ctx, registry: tools.registry, services: tools.services };
}
