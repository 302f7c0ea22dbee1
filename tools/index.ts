import type { AnyTool } from './define.js';
import { accountTools } from './accounts.tools.js';
import { datasetTools } from './datasets.tools.js';
import { explainModelTool, explainRunTool } from './explain.tools.js';
import { feedbackTools } from './feedback.tools.js';
import { fleetTools, rolloutTools } from './fleet.tools.js';
import { decideApproval, listApprovals, queryAudit, verifyAudit } from './governance.tools.js';
import { evaluationTools, modelTools } from './models.tools.js';
import { ToolRegistry } from './registry.js';
import { retrainTools } from './retrain.tools.js';
import { searchPlatform, searchTrainingLogsTool } from './search.tools.js';
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
export { accountTools } from './accounts.tools.js';
export { decideApproval, listApprovals, queryAudit, verifyAudit } from './governance.tools.js';
export { searchPlatform, searchTrainingLogsTool } from './search.tools.js';

/** Every tool of the platform. */
export function platformTools(): AnyTool[] {
  return [
    listApprovals,
    decideApproval,
    queryAudit,
    verifyAudit,
    searchPlatform,
    searchTrainingLogsTool,
    ...datasetTools,
    ...trainingTools,
    explainRunTool,
    ...modelTools,
    explainModelTool,
    ...evaluationTools,
    ...fleetTools,
    ...rolloutTools,
    ...feedbackTools,
    ...retrainTools,
    ...accountTools,
  ];
}

/** The one registry of the platform, built by the composition root from its services. */
export function createToolRegistry(extra: AnyTool[] = []): ToolRegistry {
  return new ToolRegistry([...platformTools(), ...extra]);
}
