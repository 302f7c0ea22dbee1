import { Annotation } from '@langchain/langgraph';
import type { Principal } from '../core/context.js';
import type { ToolWait } from '../tools/define.js';
import { type ToolError } from '../tools/run-tool.js';
import type { PendingApproval, StepState, ThreadStatus } from './events.js';
import { type Plan } from './plan.js';
import type { ConversationTurn } from './planner.js';
import type { Risk } from '../services/approvals/policy.js';

/** Who asked, kept in the thread so tools run as the requester whoever resumes the conversation. */
export interface Requester {
  user: Principal;
  projectId: string;
}

/** Who decided an approval. */
export interface Decider {
  userId: string;
  name: string;
  role: string;
}

/** What resumes an approval interrupt (sent through AgentRuntime.decide from any channel). */
export interface ApprovalResume {
  approvalId: string;
  /** `superseded`: an edit under four-eyes rules became the new request `next`, which another person must approve. */
  decision: 'approve' | 'reject' | 'edit' | 'superseded';
  next?: string;
  args?: Record<string, unknown>;
  reason?: string;
  by?: Decider;
}

/** What resumes a durable wait: how the job or rollout ended. */
export interface WaitOutcome {
  kind: ToolWait['kind'];
  id: string;
  ok: boolean;
  status: string;
  summary: string;
  /** Figures for later steps and the report, e.g. `{ modelVersionId, metrics: { map50 } }`. */
  data: Record<string, unknown>;
}

/** The payload of an approval interrupt, shown by every channel. */
export interface ApprovalInterrupt extends PendingApproval {
  type: 'approval';
}

/** The payload of a wait interrupt. */
export interface WaitInterrupt {
  type: 'wait';
  index: number;
  kind: ToolWait['kind'];
  id: string;
}

/** Everything known about one step of the current plan. */
export interface StepRecord {
  index: number;
  tool: string;
  reason: string;
  risk: Risk;
  state: StepState;
  args?: Record<string, unknown>;
  approvalId?: string;
  approvedBy?: Decider;
  decision?: 'approve' | 'reject' | 'edit';
  decisionReason?: string;
  output?: unknown;
  result?: unknown;
  wait?: ToolWait;
  waitOutcome?: { ok: boolean; status: string; summary: string };
  error?: ToolError;
  replayed?: boolean;
}

const lastValue = <T>(init: () => T) => Annotation<T>({ reducer: (_old, next) => next, default: init });

/** The agent's state, checkpointed after every node. */
export const AgentState = Annotation.Root({
  requester: lastValue<Requester | null>(() => null),
  message: lastValue<string>(() => ''),
  history: lastValue<ConversationTurn[]>(() => []),
  planned: lastValue<Plan | null>(() => null),
  /** A plan made by the platform (a retrain proposal) that the plan node takes instead of asking the planner; cleared once taken. */
  preset: lastValue<Plan | null>(() => null),
  index: lastValue<number>(() => 0),
  steps: lastValue<StepRecord[]>(() => []),
  pending: lastValue<ApprovalInterrupt | null>(() => null),
  status: lastValue<ThreadStatus>(() => 'running'),
  summary: lastValue<string | null>(() => null),
  replans: lastValue<number>(() => 0),
});
export type AgentStateValue = typeof AgentState.State;
