import type { McpServices } from '../mcp-server/services.js';
import type { WebServices } from '../web-chat/web-services.js';
import type { Platform } from './platform.js';

/** The services of `platform` the web layer uses, with `overrides` on top (tests). */
export function webServicesOf(platform: Platform, overrides: Partial<WebServices> = {}): WebServices {
  const base: WebServices = {
    accounts: platform.accounts,
    chatLinks: platform.chatLinks,
    audit: platform.audit,
    approvals: platform.approvals,
    tools: platform.tools,
    events: platform.events,
    cache: platform.infra.cache,
    publicUrl: platform.publicUrl,
    datasets: platform.datasets,
    uploads: platform.uploads,
    training: platform.training,
    models: platform.models,
    evaluations: platform.evaluations,
    tryouts: platform.tryouts,
    fleet: platform.fleet,
    rollouts: platform.rollouts,
    feedback: platform.feedback,
    agent: platform.agent,
  };
  return { ...base, ...overrides };
}

/** The services of `platform` the MCP server uses, with `overrides` on top (tests). */
export function mcpServicesOf(platform: Platform, overrides: Partial<McpServices> = {}): McpServices {
  const base: McpServices = {
    accounts: platform.accounts,
    approvals: platform.approvals,
    registry: platform.tools.registry,
    toolServices: platform.tools.services,
    events: platform.events,
    log: platform.log.child({ component: 'mcp' }),
    publicUrl: platform.publicUrl,
    datasets: platform.datasets,
    training: platform.training,
    models: platform.models,
    fleet: platform.fleet,
    rollouts: platform.rollouts,
    agent: platform.agent,
  };
  return { ...base, ...overrides };
}
