import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import type { CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import type { ReadCache } from '../infra/cache/read-cache.js';
import type { Db } from '../infra/db/port.js';
import { retryTransient } from '../infra/db/retry.js';
import type { Logger } from '../../core/log.js';
import { ApprovalConsumer } from './approval.consume.js';
import { ApprovalDecider, expireRequest } from './approval.decide.js';
import { ApprovalRepository } from './approval.repository.js';
import { pendingRow, requestedEntry, toRequest, type ApprovalRow } from './approval.rows.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import type { ApprovalEvent } from './events.js';
import { ExecutionLedger, type ToolExecution } from './execution-ledger.js';
import { policyFor, RISKS, type ApprovalPolicy, type Risk } from './policy.js';
import type {
  ApprovalStatus,
  ApprovalRequest,
  ApprovalRequestInput,
  ApprovalDecisionInput,
  ApprovalConsumeInput,
  ExecutionOutcome,
} from './model.js';

/** Dependencies of the approval service. */
export interface ApprovalServiceOptions {
  db: Db;
  audit: AuditLog;
  events: EventSink<ApprovalEvent>;
  log: Logger;
  /** APPROVAL_STRICT: critical steps need someone other than the requester. */
  strict: boolean;
  /** How long a request (and its approval) stays usable. */
  ttlMs: number;
  /** Validates edited arguments of a tool (the tool registry's input schema); throws to refuse. */
  validateArgs?: (tool: string, args: unknown) => unknown;
  /** How long a started execution stays owned by its process without a renewal (default 10 s). */
  executionLeaseMs?: number;
  /** Caches approval lists; the `approval.*` events invalidate them (`readScopes.approvals`). */
  reads?: ReadCache;
  now?: () => number;
}

/** The read-cache scope of one project's approval lists. */
export const approvalsReadScope = (projectId: string): string => `approvals:${projectId}`;

export { actorOf } from './approval.rows.js';

const requestSchema = z.object({
  tool: z.string().regex(/^[a-z][a-z0-9_.-]{0,99}$/, 'a tool name like "start_training"'),
  args: z.unknown(),
  risk: z.enum(RISKS),
  reason: z.string().trim().min(1, 'say why the step is needed').max(2000),
  threadId: z.string().min(1).max(191).optional(),
  step: z.number().int().min(0).max(100_000).optional(),
});
/**
 * Human approval of tool calls: requests bound to (tool, sha256 of canonical arguments, requester,
 * project, thread, step, risk), decisions checked against the policy, and the execution-time check
 * that consumes an approval exactly once. Every request, decision and use is audited in the same
 * transaction. SQL lives in `ApprovalRepository`, rows and audit entries are built in
 * `approval.rows.ts`, and the refusal rules are in `approval.checks.ts`.
 */
export class ApprovalService {
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly events: EventSink<ApprovalEvent>;
  private readonly log: Logger;
  private readonly strict: boolean;
  private readonly ttlMs: number;
  private readonly validateArgs: ((tool: string, args: unknown) => unknown) | undefined;
  private readonly now: () => number;
  private readonly reads: ReadCache | undefined;
  private readonly repo: ApprovalRepository;
  /** Executions of consumed approvals (started, finished, failed, interrupted), for exactly-once effects across crashes. */
  readonly executions: ExecutionLedger;
  private readonly use: ApprovalConsumer;
  private readonly decider: ApprovalDecider;

  constructor(opts: ApprovalServiceOptions) {
    this.db = opts.db;
    this.audit = opts.audit;
    this.events = opts.events;
    this.log = opts.log;
    this.strict = opts.strict;
    this.ttlMs = opts.ttlMs;
    this.validateArgs = opts.validateArgs;
    this.now = opts.now ?? Date.now;
    this.reads = opts.reads;
    this.repo = new ApprovalRepository(opts.db.kysely, opts.db.dialect);
    this.executions = new ExecutionLedger({
      db: opts.db,
      leaseMs: opts.executionLeaseMs ?? 10_000,
      now: this.now,
    });
    this.use = new ApprovalConsumer({ ...opts, now: this.now, repo: this.repo, executions: this.executions });
    this.decider = new ApprovalDecider({ ...opts, now: this.now, repo: this.repo });
  }

  /** The policy of a risk level under this service's strictness. */
  policy(risk: Risk): ApprovalPolicy {
    return policyFor(risk, this.strict);
  }

  /** Asks approval for a tool call; asking again for the same tool, arguments, thread and step while pending returns the same request. */
  async request(ctx: CallContext, input: ApprovalRequestInput): Promise<ApprovalRequest> {
    const parsed = requestSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `approval request is invalid: ${describeZodError(parsed.error)}`,
      );
    const { tool, risk, reason } = parsed.data;
    const argsJson = canonicalJson(input.args ?? {});
    const call = {
      projectId: ctx.projectId,
      tool,
      args: { json: argsJson, hash: sha256Hex(argsJson) },
      risk,
      reason,
      policy: policyFor(risk, this.strict),
      threadId: parsed.data.threadId ?? ctx.threadId ?? null,
      step: parsed.data.step ?? null,
    };
    const create = () =>
      this.db.transaction(async (trx) => {
        const now = this.now();
        const row = pendingRow(call, ctx.user, now, this.ttlMs);
        const existing = await this.repo.in(trx).locked({ pendingKey: row.pending_key! });
        if (existing !== undefined) {
          if (Number(existing.expires_at) > now) return { row: existing, created: false };
          await expireRequest(this.repo.in(trx), this.audit, trx, existing, now);
        }
        await this.repo.in(trx).insert(row);
        await this.audit.append(requestedEntry(ctx, row), trx);
        return { row, created: true };
      });

    // Identical requests racing meet on the unique pending key (or a deadlock on MySQL); the retry
    // finds the winner's committed row and returns it.
    const result = await retryTransient(create);
    const approval = this.toRequest(result.row);
    if (result.created) {
      ctx.log.info({ approvalId: approval.id, tool, risk }, 'approval requested');
      this.events.emit({
        type: 'approval.requested',
        projectId: ctx.projectId,
        at: approval.createdAt,
        approval,
      });
    }
    return approval;
  }

  /**
   * Approves, edits or rejects a pending request under its policy. Deciding an already decided
   * request changes nothing and returns the first decision; an expired request is refused.
   */
  decide(ctx: CallContext, id: string, input: ApprovalDecisionInput): Promise<ApprovalRequest> {
    return this.decider.decide(ctx, id, input);
  }

  /**
   * The check at execution: the approval must be approved, unexpired, for this tool, these exact
   * arguments (by hash) and this thread when bound, and unused. Marks it executed atomically, so a
   * replay or a second execution is refused. Throws `approval_required`, `forbidden` or `conflict`.
   */
  consume(ctx: CallContext, input: ApprovalConsumeInput): Promise<ApprovalRequest> {
    return this.use.consume(ctx, input);
  }

  /** The execution of an approval of the caller's project, if it started. */
  execution(ctx: CallContext, approvalId: string): Promise<ToolExecution | undefined> {
    return this.executions.get(ctx.projectId, approvalId);
  }

  /** Takes over an execution whose process died (lease expired); undefined when it is still owned or already ended. */
  takeOverExecution(ctx: CallContext, approvalId: string): Promise<ToolExecution | undefined> {
    return this.executions.takeOver(ctx.projectId, approvalId);
  }

  /** Renews this process's lease on a running execution. */
  renewExecution(approvalId: string): Promise<boolean> {
    return this.executions.renew(approvalId);
  }

  /** Records how an execution ended together with its audit entry, in one transaction. */
  finishExecution(ctx: CallContext, approvalId: string, outcome: ExecutionOutcome): Promise<void> {
    return this.use.finish(ctx, approvalId, outcome);
  }

  /** One request of the caller's project. */
  async get(ctx: CallContext, id: string): Promise<ApprovalRequest> {
    const row = await this.repo.find(ctx.projectId, id);
    if (row === undefined)
      throw new PlatformError(
        'not_found',
        `approval "${id}" not found in project "${ctx.projectId}"; list approvals to find the right id`,
      );
    return this.toRequest(row);
  }

  /**
   * Requests of the caller's project, newest first, optionally by status and thread. Served from the
   * read cache when there is one: `approval.*` events drop it, and a list holding a pending or
   * approved request is kept only until the first of them expires (expiry is a matter of time).
   */
  async list(
    ctx: CallContext,
    filter: { status?: ApprovalStatus; threadId?: string; offset?: number; limit?: number } = {},
  ): Promise<ApprovalRequest[]> {
    // "expired" also gains requests as time passes, with no row in the list to say when
    if (this.reads === undefined || filter.status === 'expired') return this.query(ctx, filter);
    const key = canonicalJson({
      s: filter.status ?? null,
      t: filter.threadId ?? null,
      o: filter.offset ?? 0,
      l: filter.limit ?? 100,
    });
    return this.reads.readExpiring(approvalsReadScope(ctx.projectId), key, async () => {
      const list = await this.query(ctx, filter);
      const now = this.now();
      const live = list
        .filter((a) => (a.status === 'pending' || a.status === 'approved') && a.expiresAt > now)
        .map((a) => a.expiresAt);
      return { value: list, validUntil: live.length === 0 ? undefined : Math.min(...live) };
    });
  }

  private async query(
    ctx: CallContext,
    filter: { status?: ApprovalStatus; threadId?: string; offset?: number; limit?: number },
  ): Promise<ApprovalRequest[]> {
    const rows = await this.repo.list(ctx.projectId, filter, this.now());
    return rows.map((r) => this.toRequest(r));
  }

  /** Requests of the caller's project still waiting for a decision. */
  pending(ctx: CallContext): Promise<ApprovalRequest[]> {
    return this.list(ctx, { status: 'pending' });
  }

  private toRequest(row: ApprovalRow): ApprovalRequest {
    return toRequest(row, this.now());
  }
}
