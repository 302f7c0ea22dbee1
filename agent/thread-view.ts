import type { StateSnapshot } from '@langchain/langgraph';
import type { ThreadStatus } from './events.js';
import type { Plan } from './plan.js';
import type { AgentStateValue, ApprovalInterrupt, StepRecord, WaitInterrupt } from './state.js';
import type { ThreadRow } from './thread-store.js';

/** A conversation as front ends show it. */
export interface ThreadView {
  id: string;
  projectId: string;
  userId: string;
  title: string;
  status: ThreadStatus;
  message: string;
  plan: Plan | null;
  steps: StepRecord[];
  /** The approval the conversation waits for, if any. */
  pendingApproval: ApprovalInterrupt | null;
  /** The job or rollout the conversation waits for, if any. */
  waitingFor: WaitInterrupt | null;
  report: string | null;
  history: Array<{ message: string; report: string }>;
  updatedAt: number;
}

/** The exchanges before the current one: the report node appends the current exchange to `history` too. */
function pastTurns(values: Partial<AgentStateValue>): Array<{ message: string; report: string }> {
  const history = values.history ?? [];
  const last = history[history.length - 1];
  return last !== undefined &&
    values.summary != null &&
    last.message === values.message &&
    last.report === values.summary
    ? history.slice(0, -1)
    : history;
}

/** The view of a conversation from its row and the graph's state: a pending interrupt decides the status. */
export function threadView(row: ThreadRow, snapshot: StateSnapshot): ThreadView {
  const values = snapshot.values as Partial<AgentStateValue>;
  const interrupts = snapshot.tasks.flatMap((t) =>
    t.interrupts.map((i) => i.value as ApprovalInterrupt | WaitInterrupt),
  );
  const approval = interrupts.find((i): i is ApprovalInterrupt => i?.type === 'approval') ?? null;
  const wait = interrupts.find((i): i is WaitInterrupt => i?.type === 'wait') ?? null;
  const status: ThreadStatus = approval
    ? 'awaiting_approval'
    : wait
      ? 'waiting'
      : (values.status ?? 'running');
  return {
    id: row.id,
    projectId: row.project_id,
    userId: row.user_id,
    title: row.title,
    status,
    message: values.message ?? '',
    plan: values.planned ?? null,
    steps: values.steps ?? [],
    pendingApproval: approval,
    waitingFor: wait,
    report: values.summary ?? null,
    history: pastTurns(values),
    updatedAt: Number(row.updated_at),
  };
}
