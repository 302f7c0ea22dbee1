import type { DomainEventBase } from '../core/events.js';
import type { ToolApprovalPolicy } from '../tools/services.js';
import type { ToolError } from '../tools/run-tool.js';
import type { ToolProgress, ToolWait } from '../tools/define.js';
import type { Plan } from './plan.js';
import type { Risk } from '../services/approvals/policy.js';

/** What every agent event carries: the conversation it belongs to. */
interface AgentEventBase extends DomainEventBase {
  threadId: string;
}

/** Lifecycle of one plan step as front ends show it. */
export type StepState =
  | 'pending'
  | 'awaiting_approval'
  | 'approved'
  | 'rejected'
  | 'running'
  | 'done'
  | 'failed'
  | 'waiting'
  | 'skipped';

/** The planner produced a plan (shown whole before anything runs), a reply, or a clarifying question. */
export interface AgentPlanEvent extends AgentEventBase {
  type: 'agent.plan';
  plan: Plan;
}

/** A step changed state. */
export interface AgentStepEvent extends AgentEventBase {
  type: 'agent.step';
  index: number;
  tool: string;
  state: StepState;
  args?: Record<string, unknown>;
  output?: unknown;
  error?: ToolError;
  /** Who approved or rejected, on `approved` / `rejected`. */
  by?: { userId: string; name: string; role: string };
  reason?: string;
}

/** What every channel shows of a step waiting for a decision: the exact tool, arguments, risk, policy and reason. */
export interface PendingApproval {
  approvalId: string;
  index: number;
  tool: string;
  args: Record<string, unknown>;
  risk: Risk;
  policy: ToolApprovalPolicy;
  reason: string;
}

/** The graph paused for a decision; any channel may decide it by approvalId. */
export interface AgentApprovalEvent extends AgentEventBase, PendingApproval {
  type: 'agent.approval';
}

/** A running tool reported progress (training metrics, rollout waves). */
export interface AgentProgressEvent extends AgentEventBase {
  type: 'agent.progress';
  index: number;
  tool: string;
  progress: ToolProgress;
}

/** The graph paused until a job or rollout ends. */
export interface AgentWaitEvent extends AgentEventBase {
  type: 'agent.wait';
  index: number;
  wait: ToolWait;
}

/** A durable wait ended and the conversation continues. */
export interface AgentResumedEvent extends AgentEventBase {
  type: 'agent.resumed';
  index: number;
  wait: ToolWait;
  ok: boolean;
  summary: string;
}

/** A token of an LLM answer, as it streams. */
export interface AgentTokenEvent extends AgentEventBase {
  type: 'agent.token';
  text: string;
}

/** The run summary at the end of a request. */
export interface AgentReportEvent extends AgentEventBase {
  type: 'agent.report';
  status: ThreadStatus;
  text: string;
}

/** The conversation could not continue (a bug or an unavailable service); the message says what to do. */
export interface AgentErrorEvent extends AgentEventBase {
  type: 'agent.error';
  message: string;
}

/** Every event the agent streams; the web chat, MCP and the bot consume them. */
export type AgentEvent =
  | AgentPlanEvent
  | AgentStepEvent
  | AgentApprovalEvent
  | AgentProgressEvent
  | AgentWaitEvent
  | AgentResumedEvent
  | AgentTokenEvent
  | AgentReportEvent
  | AgentErrorEvent;

/** Where a conversation stands. */
export type ThreadStatus =
  'running' | 'awaiting_approval' | 'waiting' | 'done' | 'stopped' | 'failed' | 'clarify';

/** Distributes Omit over the event union. */
export type AgentEventInput = AgentEvent extends infer E
  ? E extends AgentEvent
    ? Omit<E, 'at' | 'projectId' | 'threadId'>
    : never
  : never;
