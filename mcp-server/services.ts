import type { AgentRuntime } from '../agent/runtime.js';
import type { AccountService } from '../services/accounts/index.js';
import type { ApprovalService } from '../services/approvals/index.js';
import type { DatasetService } from '../services/datasets/index.js';
import type { DomainEventBase } from '../core/events.js';
import type { FleetService, RolloutService } from '../services/fleet/index.js';
import type { Logger } from '../core/log.js';
import type { ModelRegistry } from '../services/models/index.js';
import type { TrainingService } from '../services/training/index.js';
import type { ToolRegistry, ToolServices } from '../tools/index.js';

/** Everything the MCP server calls (app/wiring.ts hands it over; tests pass small fakes). */
export interface McpServices {
  accounts: Pick<AccountService, 'authenticateToken'>;
  approvals: Pick<ApprovalService, 'request' | 'decide' | 'get'>;
  registry: ToolRegistry;
  toolServices: ToolServices;
  /** Domain events (approvals decided, training and rollout progress). */
  events: { on(listener: (event: DomainEventBase) => void): () => void };
  log: Logger;
  /** URL people use to reach the web app (shown with pending approvals). */
  publicUrl: string;
  datasets: Pick<DatasetService, 'list' | 'get'>;
  training: Pick<TrainingService, 'get' | 'list' | 'metrics'>;
  models: Pick<ModelRegistry, 'get' | 'list'>;
  fleet: Pick<FleetService, 'get' | 'list'>;
  rollouts: Pick<RolloutService, 'status' | 'list'>;
  agent: Pick<AgentRuntime, 'startConversation' | 'sendMessage' | 'decide' | 'getThread' | 'events'>;
}
