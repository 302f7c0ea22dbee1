import type { Selectable, Transaction } from 'kysely';
import { z } from 'zod';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import type { CallContext, Principal, Role } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { newId } from '../../core/ids.js';
import type { ReadCache } from '../infra/cache/read-cache.js';
import type { Db } from '../infra/db/port.js';
import { retryTransient } from '../infra/db/retry.js';
import type { Database } from '../infra/db/schema.js';
import type { Logger } from '../../core/log.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import type { ApprovalEvent } from './events.js';
import { ExecutionLedger, type ToolExecution } from './execution-ledger.js';
import { policyFor, refusalReason, RISKS, type ApprovalPolicy, type Risk } from './policy.js';
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

type Row = Selectable<Database['approvals']>;

const requestSchema = z.object({
  tool: z.string().regex(/^[a-z][a-z0-9_.-]{0,99}$/, 'a tool name like "start_training"'),
  args: z.unknown(),
  risk: z.enum(RISKS),
  reason: z.string().trim().min(1, 'say why the step is needed').max(2000),
  threadId: z.string().min(1).max(191).optional(),
  step: z.number().int().min(0).max(100_000).optional(),
});
const decisionSchema = z.object({
  decision: z.enum(['approve', 'reject', 'edit']),
  args: z.unknown().optional(),
  reason: z.string().trim().max(2000).optional(),
});
const consumeSchema = z.object({
  approvalId: z.string().min(1).max(64),
  tool: z.string().min(1).max(100),
  args: z.unknown(),
  threadId: z.string().min(1).max(191).optional(),
  risk: z.enum(RISKS).optional(),
});

/**
 * Human approval of tool calls: requests bound to (tool, sha256 of canonical arguments, requester,
 * project, thread, step, risk), decisions checked against the policy, and the execution-time check
 * that consumes an approval exactly once. Every request, decision and use is audited in the same
 * transaction.
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
  /** Executions of consumed approvals (started, finished, failed, interrupted), for exactly-once effects across crashes. */
  readonly executions: ExecutionLedger;

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
    this.executions = new ExecutionLedger({
      db: opts.db,
      leaseMs: opts.executionLeaseMs ?? 10_000,
      now: this.now,
    });
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
    const { tool, risk, reason, step } = parsed.data;
    const threadId = parsed.data.threadId ?? ctx.threadId ?? null;
    const argsJson = canonicalJson(input.args ?? {});
    const hash = sha256Hex(argsJson);
    const pendingKey = sha256Hex(
      canonicalJson({ projectId: ctx.projectId, tool, hash, threadId, step: step ?? null }),
    );
    const policy = policyFor(risk, this.strict);

    const create = () =>
      this.db.transaction(async (trx) => {
        const now = this.now();
        const existing = await this.lockedRow(trx, { pendingKey });
        if (existing !== undefined) {
          if (Number(existing.expires_at) > now) return { row: existing, created: false };
          await this.markExpired(trx, existing, now);
        }
        const row: Row = {
          id: newId('apr'),
          project_id: ctx.projectId,
          tool,
          args: argsJson,
          args_hash: hash,
          edited_args: null,
          edited_args_hash: null,
          risk,
          reason,
          policy: JSON.stringify(policy),
          requester_id: ctx.user.userId,
          requester_name: ctx.user.name,
          requester_role: ctx.user.role,
          requester_kind: ctx.user.kind,
          thread_id: threadId,
          step: step ?? null,
          status: 'pending',
          decision: null,
          decided_by: null,
          decided_by_name: null,
          decided_by_role: null,
          decided_at: null,
          decision_reason: null,
          created_at: now,
          expires_at: now + this.ttlMs,
          consumed_at: null,
          consumed_by: null,
          pending_key: pendingKey,
          superseded_by: null,
        };
        await trx.insertInto('approvals').values(row).execute();
        await this.audit.append(
          {
            projectId: ctx.projectId,
            actor: actorOf(ctx),
            action: 'approval.requested',
            tool,
            approvalId: row.id,
            ...(threadId === null ? {} : { threadId }),
            data: {
              risk,
              reason,
              step: step ?? null,
              argsHash: hash,
              args: JSON.parse(argsJson) as unknown,
              policy: policy.summary,
              requestId: ctx.requestId,
            },
          },
          trx,
        );
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
  async decide(ctx: CallContext, id: string, input: ApprovalDecisionInput): Promise<ApprovalRequest> {
    const parsed = decisionSchema.safeParse({
      decision: input.decision,
      args: input.args,
      reason: input.reason,
    });
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `approval decision is invalid: ${describeZodError(parsed.error)}`,
      );
    const { decision } = parsed.data;
    const reason = parsed.data.reason || null;

    const outcome = await this.db.transaction(async (trx) => {
      const now = this.now();
      const row = await this.lockedRow(trx, { id, projectId: ctx.projectId });
      if (row === undefined) return { kind: 'missing' as const };
      const policy = parsePolicy(row.policy);
      const self = ctx.user.userId === row.requester_id;
      const refusal =
        decision === 'reject' && self && ctx.user.role !== 'viewer'
          ? undefined
          : refusalReason(policy, ctx.user, row.requester_id);
      if (refusal !== undefined) return { kind: 'refused' as const, row, refusal };
      if (row.status !== 'pending') return { kind: 'done' as const, row };
      if (Number(row.expires_at) <= now) {
        await this.markExpired(trx, row, now);
        return { kind: 'expired' as const, row };
      }

      let editedJson: string | null = null;
      let editedHash: string | null = null;
      if (decision === 'edit') {
        if (input.args === undefined)
          throw new PlatformError('invalid_input', 'an edit needs the new arguments in "args"');
        const validate =
          input.validate ??
          (this.validateArgs === undefined ? undefined : (a: unknown) => this.validateArgs!(row.tool, a));
        let edited: unknown;
        try {
          edited = validate === undefined ? input.args : validate(input.args);
        } catch (err) {
          const message =
            err instanceof PlatformError
              ? err.message
              : err instanceof z.ZodError
                ? describeZodError(err)
                : (err as Error).message;
          throw new PlatformError(
            'invalid_input',
            `edited arguments for ${row.tool} are invalid: ${message}; the request stays pending`,
          );
        }
        editedJson = canonicalJson(edited);
        editedHash = sha256Hex(editedJson);
      }
      // Four-eyes: an edit by someone who may not approve their own request becomes a new request in
      // the editor's name, so another person must approve what the editor changed.
      if (decision === 'edit' && !policy.selfApproval && editedJson !== null && editedHash !== null) {
        return this.supersede(trx, ctx, row, { json: editedJson, hash: editedHash }, reason, now);
      }
      const status = decision === 'reject' ? 'rejected' : 'approved';
      const updated = await trx
        .updateTable('approvals')
        .set({
          status,
          decision,
          decided_by: ctx.user.userId,
          decided_by_name: ctx.user.name,
          decided_by_role: ctx.user.role,
          decided_at: now,
          decision_reason: reason,
          edited_args: editedJson,
          edited_args_hash: editedHash,
          pending_key: null,
        })
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) {
        const current = await this.lockedRow(trx, { id: row.id });
        return { kind: 'done' as const, row: current ?? row };
      }
      await this.audit.append(
        {
          projectId: ctx.projectId,
          actor: actorOf(ctx),
          action: 'approval.decided',
          tool: row.tool,
          approvalId: row.id,
          ...(row.thread_id === null ? {} : { threadId: row.thread_id }),
          data: {
            decision,
            reason,
            role: ctx.user.role,
            risk: row.risk,
            requesterId: row.requester_id,
            argsHash: row.args_hash,
            ...(editedJson === null
              ? {}
              : { editedArgsHash: editedHash, editedArgs: JSON.parse(editedJson) as unknown }),
            requestId: ctx.requestId,
          },
        },
        trx,
      );
      const fresh = await trx
        .selectFrom('approvals')
        .selectAll()
        .where('id', '=', row.id)
        .executeTakeFirstOrThrow();
      return { kind: 'decided' as const, row: fresh };
    });

    switch (outcome.kind) {
      case 'superseded': {
        const original = this.toRequest(outcome.row);
        const next = this.toRequest(outcome.next);
        ctx.log.info(
          { approvalId: id, next: next.id },
          'approval edited under four-eyes rules; the edited call needs another approver',
        );
        this.events.emit({
          type: 'approval.decided',
          projectId: ctx.projectId,
          at: this.now(),
          approval: original,
        });
        this.events.emit({
          type: 'approval.requested',
          projectId: ctx.projectId,
          at: next.createdAt,
          approval: next,
        });
        return original;
      }
      case 'missing':
        throw new PlatformError(
          'not_found',
          `approval "${id}" not found in project "${ctx.projectId}"; list pending approvals to find the right id`,
        );
      case 'refused':
        throw new PlatformError(
          'forbidden',
          `you may not decide approval ${id} (${outcome.row.tool}, ${outcome.row.risk}): ${outcome.refusal}`,
          {
            policy: parsePolicy(outcome.row.policy),
          },
        );
      case 'expired':
        throw new PlatformError(
          'conflict',
          `approval ${id} for ${outcome.row.tool} expired at ${new Date(Number(outcome.row.expires_at)).toISOString()}; ask for approval again`,
        );
      case 'done':
        return this.toRequest(outcome.row);
      case 'decided': {
        const approval = this.toRequest(outcome.row);
        ctx.log.info({ approvalId: id, decision }, 'approval decided');
        this.events.emit({
          type: 'approval.decided',
          projectId: ctx.projectId,
          at: approval.decision?.at ?? this.now(),
          approval,
        });
        return approval;
      }
    }
  }

  /** Closes `row` as edited and opens the edited call as a new pending request in the editor's name (same thread and step). */
  private async supersede(
    trx: Transaction<Database>,
    ctx: CallContext,
    row: Row,
    edited: { json: string; hash: string },
    reason: string | null,
    now: number,
  ): Promise<{ kind: 'superseded'; row: Row; next: Row }> {
    const nextId = newId('apr');
    const pendingKey = sha256Hex(
      canonicalJson({
        projectId: row.project_id,
        tool: row.tool,
        hash: edited.hash,
        threadId: row.thread_id,
        step: row.step,
      }),
    );
    const existing = await this.lockedRow(trx, { pendingKey });
    if (existing !== undefined) await this.markExpired(trx, existing, now);
    const next: Row = {
      ...row,
      id: nextId,
      args: edited.json,
      args_hash: edited.hash,
      edited_args: null,
      edited_args_hash: null,
      requester_id: ctx.user.userId,
      requester_name: ctx.user.name,
      requester_role: ctx.user.role,
      requester_kind: ctx.user.kind,
      status: 'pending',
      decision: null,
      decided_by: null,
      decided_by_name: null,
      decided_by_role: null,
      decided_at: null,
      decision_reason: null,
      created_at: now,
      expires_at: now + this.ttlMs,
      consumed_at: null,
      consumed_by: null,
      pending_key: pendingKey,
      superseded_by: null,
    };
    await trx
      .updateTable('approvals')
      .set({
        status: 'rejected',
        decision: 'edit',
        decided_by: ctx.user.userId,
        decided_by_name: ctx.user.name,
        decided_by_role: ctx.user.role,
        decided_at: now,
        decision_reason:
          reason ??
          `edited by ${ctx.user.name || ctx.user.userId}; the edited call needs another approver (${nextId})`,
        edited_args: edited.json,
        edited_args_hash: edited.hash,
        pending_key: null,
        superseded_by: nextId,
      })
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .execute();
    await trx.insertInto('approvals').values(next).execute();
    const thread = row.thread_id === null ? {} : { threadId: row.thread_id };
    await this.audit.append(
      {
        projectId: row.project_id,
        actor: actorOf(ctx),
        action: 'approval.decided',
        tool: row.tool,
        approvalId: row.id,
        ...thread,
        data: {
          decision: 'edit',
          reason,
          role: ctx.user.role,
          risk: row.risk,
          requesterId: row.requester_id,
          argsHash: row.args_hash,
          editedArgsHash: edited.hash,
          editedArgs: JSON.parse(edited.json) as unknown,
          supersededBy: nextId,
          requestId: ctx.requestId,
        },
      },
      trx,
    );
    await this.audit.append(
      {
        projectId: row.project_id,
        actor: actorOf(ctx),
        action: 'approval.requested',
        tool: row.tool,
        approvalId: nextId,
        ...thread,
        data: {
          risk: row.risk,
          reason: row.reason,
          step: row.step,
          argsHash: edited.hash,
          args: JSON.parse(edited.json) as unknown,
          policy: parsePolicy(row.policy).summary,
          supersedes: row.id,
          requestId: ctx.requestId,
        },
      },
      trx,
    );
    const closed = await trx
      .selectFrom('approvals')
      .selectAll()
      .where('id', '=', row.id)
      .executeTakeFirstOrThrow();
    return { kind: 'superseded', row: closed, next };
  }

  /**
   * The check at execution: the approval must be approved, unexpired, for this tool, these exact
   * arguments (by hash) and this thread when bound, and unused. Marks it executed atomically, so a
   * replay or a second execution is refused. Throws `approval_required`, `forbidden` or `conflict`.
   */
  async consume(ctx: CallContext, input: ApprovalConsumeInput): Promise<ApprovalRequest> {
    const parsed = consumeSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `approval check is invalid: ${describeZodError(parsed.error)}`,
      );
    const { approvalId, tool } = parsed.data;
    const threadId = parsed.data.threadId ?? ctx.threadId ?? null;
    const hash = sha256Hex(canonicalJson(input.args ?? {}));

    const outcome = await this.db.transaction(async (trx) => {
      const now = this.now();
      const row = await this.lockedRow(trx, { id: approvalId, projectId: ctx.projectId });
      const refusal =
        row === undefined
          ? missingRefusal(approvalId, ctx.projectId)
          : this.consumeRefusal(row, { tool, hash, threadId, now });
      if (refusal !== undefined) return { ok: false as const, refusal, row };
      const updated = await trx
        .updateTable('approvals')
        .set({ status: 'executed', consumed_at: now, consumed_by: ctx.user.userId })
        .where('id', '=', approvalId)
        .where('status', '=', 'approved')
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) {
        return {
          ok: false as const,
          refusal: new PlatformError(
            'conflict',
            `approval ${approvalId} was already used by another execution; ask for a new approval`,
          ),
          row,
        };
      }
      await this.audit.append(
        {
          projectId: ctx.projectId,
          actor: actorOf(ctx),
          action: 'approval.consumed',
          tool,
          approvalId,
          ...(threadId === null ? {} : { threadId }),
          data: { argsHash: hash, requestId: ctx.requestId },
        },
        trx,
      );
      // "started" commits with the consumption: a crash after this point leaves a run to resume, never a lost step.
      await this.executions.start(trx, ctx, { approvalId, tool, threadId, argsHash: hash });
      await this.audit.append(
        {
          projectId: ctx.projectId,
          actor: actorOf(ctx),
          action: 'tool.started',
          tool,
          approvalId,
          ...(threadId === null ? {} : { threadId }),
          data: {
            args: input.args ?? {},
            ...(parsed.data.risk === undefined ? {} : { risk: parsed.data.risk }),
            attempt: 1,
          },
        },
        trx,
      );
      return {
        ok: true as const,
        row: await trx
          .selectFrom('approvals')
          .selectAll()
          .where('id', '=', approvalId)
          .executeTakeFirstOrThrow(),
      };
    });

    if (outcome.ok) {
      const approval = this.toRequest(outcome.row);
      this.events.emit({
        type: 'approval.consumed',
        projectId: ctx.projectId,
        at: approval.consumedAt ?? this.now(),
        approval,
      });
      return approval;
    }
    await this.audit
      .append({
        projectId: ctx.projectId,
        actor: actorOf(ctx),
        action: 'approval.refused',
        tool,
        approvalId,
        ...(threadId === null ? {} : { threadId }),
        data: {
          code: outcome.refusal.code,
          message: outcome.refusal.message,
          argsHash: hash,
          requestId: ctx.requestId,
        },
      })
      .catch((err: unknown) => this.log.error({ err, approvalId }, 'could not audit a refused approval'));
    ctx.log.warn({ approvalId, tool, code: outcome.refusal.code }, 'approval refused at execution');
    throw outcome.refusal;
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
  async finishExecution(ctx: CallContext, approvalId: string, outcome: ExecutionOutcome): Promise<void> {
    const row = await this.executions.get(ctx.projectId, approvalId);
    await this.db.transaction(async (trx) => {
      await this.executions.finish(
        approvalId,
        outcome.status === 'finished'
          ? { status: 'finished', output: outcome.output }
          : { status: outcome.status, error: outcome.error },
        trx,
      );
      await this.audit.append(
        {
          projectId: ctx.projectId,
          actor: actorOf(ctx),
          action:
            outcome.status === 'finished'
              ? 'tool.finished'
              : outcome.status === 'failed'
                ? 'tool.failed'
                : 'tool.interrupted',
          ...(row === undefined ? {} : { tool: row.tool }),
          approvalId,
          ...(row?.threadId ? { threadId: row.threadId } : {}),
          data: outcome.audit,
        },
        trx,
      );
    });
  }

  /** One request of the caller's project. */
  async get(ctx: CallContext, id: string): Promise<ApprovalRequest> {
    const row = await this.db.kysely
      .selectFrom('approvals')
      .selectAll()
      .where('id', '=', id)
      .where('project_id', '=', ctx.projectId)
      .executeTakeFirst();
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
    const now = this.now();
    let q = this.db.kysely.selectFrom('approvals').selectAll().where('project_id', '=', ctx.projectId);
    if (filter.threadId !== undefined) q = q.where('thread_id', '=', filter.threadId);
    switch (filter.status) {
      case undefined:
        break;
      case 'pending':
      case 'approved':
        q = q.where('status', '=', filter.status).where('expires_at', '>', now);
        break;
      case 'expired':
        q = q.where((eb) =>
          eb.or([
            eb('status', '=', 'expired'),
            eb.and([eb('status', 'in', ['pending', 'approved']), eb('expires_at', '<=', now)]),
          ]),
        );
        break;
      default:
        q = q.where('status', '=', filter.status);
    }
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(Math.max(filter.limit ?? 100, 1), 1000))
      .offset(Math.max(filter.offset ?? 0, 0))
      .execute();
    return rows.map((r) => this.toRequest(r));
  }

  /** Requests of the caller's project still waiting for a decision. */
  pending(ctx: CallContext): Promise<ApprovalRequest[]> {
    return this.list(ctx, { status: 'pending' });
  }

  private consumeRefusal(
    row: Row,
    want: { tool: string; hash: string; threadId: string | null; now: number },
  ): PlatformError | undefined {
    const id = row.id;
    switch (row.status) {
      case 'pending':
        return Number(row.expires_at) <= want.now
          ? new PlatformError(
              'approval_required',
              `approval ${id} expired before anyone decided; ask for approval again`,
            )
          : new PlatformError(
              'approval_required',
              `approval ${id} for ${row.tool} is still waiting for a decision`,
            );
      case 'rejected':
        return new PlatformError(
          'forbidden',
          `approval ${id} for ${row.tool} was rejected by ${row.decided_by_name ?? row.decided_by ?? 'someone'}${row.decision_reason ? `: ${row.decision_reason}` : ''}`,
        );
      case 'executed':
        return new PlatformError(
          'conflict',
          `approval ${id} was already used at ${new Date(Number(row.consumed_at)).toISOString()}; an approval runs its tool once`,
        );
      case 'expired':
        return new PlatformError('approval_required', `approval ${id} expired; ask for approval again`);
      case 'approved':
        break;
    }
    if (Number(row.expires_at) <= want.now) {
      return new PlatformError(
        'approval_required',
        `approval ${id} expired at ${new Date(Number(row.expires_at)).toISOString()}; ask for approval again`,
      );
    }
    if (row.tool !== want.tool)
      return new PlatformError(
        'forbidden',
        `approval ${id} is for tool ${row.tool}, not ${want.tool}; ask for approval of ${want.tool}`,
      );
    if (row.thread_id !== null && row.thread_id !== want.threadId) {
      return new PlatformError(
        'forbidden',
        `approval ${id} belongs to another conversation; ask for approval in this one`,
      );
    }
    const approvedHash = row.edited_args_hash ?? row.args_hash;
    if (approvedHash !== want.hash) {
      return new PlatformError(
        'forbidden',
        `the arguments of ${want.tool} differ from the approved ones (approved hash ${approvedHash.slice(0, 12)}…, got ${want.hash.slice(0, 12)}…); run it with the approved arguments or ask again`,
        { approvedArgsHash: approvedHash, argsHash: want.hash },
      );
    }
    return undefined;
  }

  private async lockedRow(
    trx: Transaction<Database>,
    by: { id?: string; projectId?: string; pendingKey?: string },
  ): Promise<Row | undefined> {
    let q = trx.selectFrom('approvals').selectAll();
    if (by.id !== undefined) q = q.where('id', '=', by.id);
    if (by.projectId !== undefined) q = q.where('project_id', '=', by.projectId);
    if (by.pendingKey !== undefined) q = q.where('pending_key', '=', by.pendingKey);
    if (this.db.dialect === 'mysql') q = q.forUpdate();
    return q.executeTakeFirst();
  }

  private async markExpired(trx: Transaction<Database>, row: Row, now: number): Promise<void> {
    const res = await trx
      .updateTable('approvals')
      .set({ status: 'expired', pending_key: null })
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return;
    await this.audit.append(
      {
        projectId: row.project_id,
        actor: { id: 'system', kind: 'system' },
        action: 'approval.expired',
        tool: row.tool,
        approvalId: row.id,
        ...(row.thread_id === null ? {} : { threadId: row.thread_id }),
        data: { expiresAt: Number(row.expires_at), at: now },
      },
      trx,
    );
  }

  private toRequest(row: Row): ApprovalRequest {
    const now = this.now();
    const expiresAt = Number(row.expires_at);
    const stale = (row.status === 'pending' || row.status === 'approved') && expiresAt <= now;
    const args = JSON.parse(row.args) as unknown;
    const editedArgs = row.edited_args === null ? null : (JSON.parse(row.edited_args) as unknown);
    return {
      id: row.id,
      projectId: row.project_id,
      tool: row.tool,
      args,
      argsHash: row.args_hash,
      editedArgs,
      editedArgsHash: row.edited_args_hash,
      approvedArgs: row.edited_args === null ? args : editedArgs,
      approvedArgsHash: row.edited_args_hash ?? row.args_hash,
      risk: row.risk,
      reason: row.reason,
      policy: parsePolicy(row.policy),
      requester: {
        userId: row.requester_id,
        name: row.requester_name,
        role: row.requester_role as Role,
        kind: row.requester_kind as Principal['kind'],
      },
      threadId: row.thread_id,
      step: row.step === null ? null : Number(row.step),
      status: stale ? 'expired' : row.status,
      decision:
        row.decision === null
          ? null
          : {
              decision: row.decision,
              by: {
                userId: row.decided_by ?? '',
                name: row.decided_by_name ?? '',
                role: (row.decided_by_role ?? 'viewer') as Role,
              },
              at: Number(row.decided_at),
              reason: row.decision_reason,
            },
      createdAt: Number(row.created_at),
      expiresAt,
      consumedAt: row.consumed_at === null ? null : Number(row.consumed_at),
      consumedBy: row.consumed_by,
      supersededBy: row.superseded_by ?? null,
    };
  }
}

function parsePolicy(text: string): ApprovalPolicy {
  return JSON.parse(text) as ApprovalPolicy;
}

function missingRefusal(id: string, projectId: string): PlatformError {
  return new PlatformError(
    'approval_required',
    `no approval "${id}" in project "${projectId}"; ask for approval before running this step`,
  );
}

/** The audit actor of a call context. */
export function actorOf(ctx: CallContext): AuditActor {
  return { id: ctx.user.userId, kind: ctx.user.kind };
}
