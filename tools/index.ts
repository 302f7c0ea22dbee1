import type { AnyTool } from './define.js';
import { datasetTools } from './datasets.tools.js';
import { explainModelTool, explainRunTool } from './explain.tools.js';
import { feedbackTools } from './feedback.tools.js';
import { fleetTools, rolloutTools } from './fleet.tools.js';
import { decideApproval, listApprovals, queryAudit, verifyAudit } from './governance.tools.js';
import { evaluationTools, modelTools } from './models.tools.js';
import { ToolRegistry } from './registry.js';
import { retrainTools } from './retrain.tools.js';
import { searchPlatform } from './search.tools.js';
import type { ToolServices } from './services.js';
import { trainingTools } from './training.tools.js';

export { defineTool } from './define.js';
export type { AnyTool, ToolContext, ToolDefinition, ToolLookup, ToolProgress, ToolWait } from './define.js';
export { ToolRegistry } from './registry.js';
export type { LlmToolSpec, ToolSchema } from './registry.js';
export { auditActor, runTool, toToolError } from './run-tool.js';
export type { RunToolOptions, ToolError, ToolResult } from './run-tool.js';
export type {
  ApprovalsApi,
  AuditApi,
  ToolApprovalPolicy,
  ToolApprovalView,
  ToolAuditEntry,
  ToolServices,
} from './services.js';
export { datasetTools } from './datasets.tools.js';
export { trainingTools } from './training.tools.js';
export { evaluateModelTool, evaluationTools, listEvaluationsTool, modelTools } from './models.tools.js';
export { explainModelTool, explainRunTool } from './explain.tools.js';
export { fleetTools, rolloutTools } from './fleet.tools.js';
export { feedbackTools } from './feedback.tools.js';
export { retrainTools } from './retrain.tools.js';
export { decideApproval, listApprovals, queryAudit, verifyAudit } from './governance.tools.js';
export { searchPlatform } from './search.tools.js';

/** The tools whose services are present: a tool without its service is never registered. */
export function platformTools(services: ToolServices): AnyTool[] {
  const tools: AnyTool[] = [listApprovals, decideApproval, queryAudit, verifyAudit];
  if (services.search) tools.push(searchPlatform);
  if (services.datasets) tools.push(...datasetTools);
  if (services.training) tools.push(...trainingTools, explainRunTool);
  if (services.models) tools.push(...modelTools, explainModelTool);
  if (services.evaluations) tools.push(...evaluationTools);
  if (services.fleet) tools.push(...fleetTools);
  if (services.rollouts) tools.push(...rolloutTools);
  if (services.feedback) tools.push(...feedbackTools);
  if (services.retrain) tools.push(...retrainTools);
  return tools;
}

/** The one registry of the platform, built by the composition root from its services. */
export function createToolRegistry(services: ToolServices, extra: AnyTool[] = []): ToolRegistry {
  return new ToolRegistry([...platformTools(services), ...extra]);
}
