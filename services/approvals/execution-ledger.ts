import type { Selectable, Transaction } from 'kysely';
import type { CallContext } from '../../core/context.js';
import { newId } from '../../core/ids.js';
import type { Db, DbExecutor } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';

type Row = Selectable<Database['tool_executions']>;

/** What the ledger knows of one approved call. */
export interface ToolExecution {
  approvalId: string;
  projectId: string;
  tool: string;
  threadId: string | null;
  argsHash: string;
  status: Row['status'];
  attempt: number;
  instanceId: string;
  leaseUntil: number;
  output: unknown;
  error: { code: string; message: string; details?: Record<string, unknown> } | null;
  startedAt: number;
  finishedAt: number | null;
}

/** Options of the ledger. */
export interface ExecutionLedgerOptions {
  db: Db;
  /** How long a run stays owned by its process without a renewal; past it, the run is taken to have died. */
  leaseMs?: number;
  now?: () => number;
}

/**
 * The record of approved tool calls that started running: written in the transaction that consumes
 * the approval, renewed by the running process (a lease), closed with the outcome. After a crash a
 * run found `started` with an expired lease is taken over by exactly one process (compare-and-set
 * on the lease), which re-runs it under the same idempotency key or marks it interrupted.
 */
export class ExecutionLedger {
  /** This process: a run whose instance is ours and not in `running` died with an earlier start of a process that reused no id. */
  readonly instanceId = newId('inst');
  readonly leaseMs: number;
  private readonly db: Db;
  private readonly now: () => number;

  constructor(opts: ExecutionLedgerOptions) {
    this.db = opts.db;
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.now = opts.now ?? Date.now;
  }

  /** Records that `approvalId` starts running here, inside the transaction that consumed it. */
  async start(
    trx: Transaction<Database>,
    ctx: CallContext,
    run: { approvalId: string; tool: string; threadId: string | null; argsHash: string },
  ): Promise<void> {
    const now = this.now();
    await trx
      .insertInto('tool_executions')
      .values({
        approval_id: run.approvalId,
        project_id: ctx.projectId,
        tool: run.tool,
        thread_id: run.threadId,
        args_hash: run.argsHash,
        status: 'started',
        attempt: 1,
        instance_id: this.instanceId,
        lease_until: now + this.leaseMs,
        output: null,
        error: null,
        started_at: now,
        finished_at: null,
      })
      .execute();
  }

  /** The execution of an approval in a project, if it ever started. */
  async get(
    projectId: string,
    approvalId: string,
    db: DbExecutor = this.db.kysely,
  ): Promise<ToolExecution | undefined> {
    const row = await db
      .selectFrom('tool_executions')
      .selectAll()
      .where('approval_id', '=', approvalId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    return row === undefined ? undefined : toExecution(row);
  }

  /** Extends the lease of a run this process owns; false when another process took it over. */
  async renew(approvalId: string): Promise<boolean> {
    const res = await this.db.kysely
      .updateTable('tool_executions')
      .set({ lease_until: this.now() + this.leaseMs })
      .where('approval_id', '=', approvalId)
      .where('instance_id', '=', this.instanceId)
      .where('status', '=', 'started')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Takes over a run whose lease ran out (its process died): one caller wins the compare-and-set,
   * gets the run with its attempt counted up, and owns a fresh lease.
   */
  async takeOver(projectId: string, approvalId: string): Promise<ToolExecution | undefined> {
    const now = this.now();
    const current = await this.get(projectId, approvalId);
    if (current === undefined || current.status !== 'started' || current.leaseUntil > now) return undefined;
    const res = await this.db.kysely
      .updateTable('tool_executions')
      .set({ instance_id: this.instanceId, lease_until: now + this.leaseMs, attempt: current.attempt + 1 })
      .where('approval_id', '=', approvalId)
      .where('status', '=', 'started')
      .where('instance_id', '=', current.instanceId)
      .where('lease_until', '=', current.leaseUntil)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return undefined;
    return {
      ...current,
      instanceId: this.instanceId,
      leaseUntil: now + this.leaseMs,
      attempt: current.attempt + 1,
    };
  }

  /** Closes a run with its outcome (in `trx` when given, so the audit entry and the outcome commit together). */
  async finish(
    approvalId: string,
    outcome:
      | { status: 'finished'; output: unknown }
      | { status: 'failed' | 'interrupted'; error: ToolExecution['error'] },
    trx?: Transaction<Database>,
  ): Promise<void> {
    await (trx ?? this.db.kysely)
      .updateTable('tool_executions')
      .set({
        status: outcome.status,
        output: outcome.status === 'finished' ? (JSON.stringify(outcome.output) ?? 'null') : null,
        error: outcome.status === 'finished' ? null : JSON.stringify(outcome.error),
        finished_at: this.now(),
      })
      .where('approval_id', '=', approvalId)
      .where('status', '=', 'started')
      .execute();
  }

  /**
   * Runs still `started` whose lease ran out: steps a crash interrupted, for a restarted process to
   * resume; `outsideConversations` keeps those no conversation will resume (REST, MCP, bot calls).
   */
  async orphaned(limit = 100, opts: { outsideConversations?: boolean } = {}): Promise<ToolExecution[]> {
    let q = this.db.kysely
      .selectFrom('tool_executions')
      .selectAll()
      .where('status', '=', 'started')
      .where('lease_until', '<=', this.now());
    if (opts.outsideConversations === true) q = q.where('thread_id', 'is', null);
    const rows = await q.orderBy('started_at').limit(limit).execute();
    return rows.map(toExecution);
  }
}

function toExecution(row: Row): ToolExecution {
  return {
    approvalId: row.approval_id,
    projectId: row.project_id,
    tool: row.tool,
    threadId: row.thread_id,
    argsHash: row.args_hash,
    status: row.status,
    attempt: Number(row.attempt),
    instanceId: row.instance_id,
    leaseUntil: Number(row.lease_until),
    output: row.output === null ? undefined : (JSON.parse(row.output) as unknown),
    error: row.error === null ? null : (JSON.parse(row.error) as ToolExecution['error']),
    startedAt: Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}
