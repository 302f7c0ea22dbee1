export { KyselySaver } from './checkpointer.js';
export { buildAgentGraph } from './graph.js';
export { AgentState } from './state.js';
export type { AgentGraph, AgentGraphDeps } from './graph.js';
export type {
  AgentStateValue,
  ApprovalInterrupt,
  ApprovalResume,
  Decider,
  Requester,
  StepRecord,
  WaitInterrupt,
  WaitOutcome,
} from './state.js';
export { AgentRuntime } from './runtime.js';
export type {
  AgentDecision,
  AgentRuntimeOptions,
  DomainEventSource,
  ThreadView,
  WaitSource,
} from './runtime.js';
export type {
  AgentApprovalEvent,
  AgentErrorEvent,
  AgentEvent,
  AgentPlanEvent,
  AgentProgressEvent,
  AgentReportEvent,
  AgentResumedEvent,
  AgentStepEvent,
  AgentTokenEvent,
  AgentWaitEvent,
  StepState,
  ThreadStatus,
} from './events.js';
export { planSchema, planStepSchema, resolveArgs, describeArgs, isStepRef, conditionOf } from './plan.js';
export { proposeRetrain, retrainPlan } from './retrain-plan.js';
export type { PlanStarter } from './retrain-plan.js';
export type { Choice, Plan, PlanStep, StepOutcome } from './plan.js';
export type {
  CatalogDataset,
  CatalogDevice,
  CatalogJob,
  CatalogModelVersion,
  CatalogRollout,
  ConversationTurn,
  PlanInput,
  Planner,
  PlatformCatalog,
  Rejection,
  ReplanInput,
} from './planner.js';
export { RulesPlanner } from './rules-planner.js';
export { LlmPlanner, chatModelFromEnv, llmReporter } from './llm-planner.js';
export type { LlmPlannerOptions } from './llm-planner.js';
export { StaticCatalog } from './static-catalog.js';
export type { StaticCatalogData } from './static-catalog.js';
export { serviceCatalog } from './service-catalog.js';
export type { FleetCatalogSource } from './service-catalog.js';
export { rolloutWaitSource, trainingWaitSource } from './wait-sources.js';
export { templateReport, stepFigures, stepResults, type StepResults } from './report.js';
export { languageOf, type ReplyLanguage } from './i18n.js';
