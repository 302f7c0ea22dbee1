import type { AgentRuntime } from '../agent/runtime.js';
import type { AccountService } from '../services/accounts/index.js';
import type { ApprovalService } from '../services/approvals/index.js';
import type { DatasetService } from '../services/datasets/index.js';
import type { DomainEventBase } from '../services/events.js';
import type { FleetService, RolloutService } from '../services/fleet/index.js';
import type { Logger } from '../services/log.js';
import type { ModelRegistry } from '../services/models/index.js';
import type { Platform } from '../services/platform.js';
import type { TrainingService } from '../services/training/index.js';
import { createToolRegistry, type ToolRegistry, type ToolServices } from '../tools/index.js';

/** Everything the MCP server calls; domain services not wired on the platform are absent and their resources are not offered. */
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
  datasets?: Pick<DatasetService, 'list' | 'get'>;
  training?: Pick<TrainingService, 'get' | 'list' | 'metrics'>;
  models?: Pick<ModelRegistry, 'get' | 'list'>;
  fleet?: Pick<FleetService, 'get' | 'list'>;
  rollouts?: Pick<RolloutService, 'status' | 'list'>;
  agent?: Pick<AgentRuntime, 'startConversation' | 'sendMessage' | 'decide' | 'getThread' | 'events'>;
}

type MaybeWired = Platform & {
  training?: TrainingService;
  models?: ModelRegistry;
  fleet?: FleetService;
  rollouts?: RolloutService;
  agent?: AgentRuntime;
  tools?: ToolRegistry | { registry: ToolRegistry; services: ToolServices };
  toolServices?: ToolServices;
};

function isRegistry(value: unknown): value is ToolRegistry {
  return typeof value === 'object' && value !== null && typeof (value as ToolRegistry).parseInput === 'function';
}

/** The services of `platform` the MCP server uses (whatever the composition root wired), with `overrides` on top. */
export function mcpServicesOf(platform: Platform, overrides: Partial<McpServices> = {}): McpServices {
  const p = platform as MaybeWired;
  const toolServices: ToolServices = p.toolServices ?? {
    approvals: p.approvals,
    audit: p.audit,
    approvalStrict: p.config.APPROVAL_STRICT,
    search: p.infra.search,
    ...(p.datasets ? { datasets: p.datasets } : {}),
    ...(p.training ? { training: p.training } : {}),
    ...(p.models ? { models: p.models } : {}),
  };
  let registry: ToolRegistry;
  let services = toolServices;
  if (p.tools === undefined) registry = createToolRegistry(toolServices);
  else if (isRegistry(p.tools)) registry = p.tools;
  else ({ registry, services } = p.tools);
  const base: McpServices = {
    accounts: p.accounts,
    approvals: p.approvals,
    registry,
    toolServices: services,
    events: p.events,
    log: p.log.child({ component: 'mcp' }),
    publicUrl: p.publicUrl,
    ...(p.datasets ? { datasets: p.datasets } : {}),
    ...(p.training ? { training: p.training } : {}),
    ...(p.models ? { models: p.models } : {}),
    ...(p.fleet ? { fleet: p.fleet } : {}),
    ...(p.rollouts ? { rollouts: p.rollouts } : {}),
    ...(p.agent ? { agent: p.agent } : {}),
  };
  return { ...base, ...overrides };
}
