import type { Transaction } from 'kysely';
import { z } from 'zod';
import type { CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Database } from '../infra/db/schema.js';
import { decisionRefusal, validatedEdit } from './approval.checks.js';
import type { ApprovalConsumerDeps } from './approval.consume.js';
import type { ApprovalRepository } from './approval.repository.js';
import {
  decidedEntry,
  parsePolicy,
  pendingRow,
  requestedEntry,
  toRequest,
  type ApprovalRow,
  type DecisionRecord,
} from './approval.rows.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import type { ApprovalDecisionInput, ApprovalRequest } from './model.js';

/** What a decision transaction ended in; `report` turns it into the answer and the events. */
type Decided =
  | { kind: 'missing' }
  | { kind: 'refused'; row: ApprovalRow; refusal: string }
  | { kind: 'done' | 'expired' | 'decided'; row: ApprovalRow }
  | { kind: 'superseded'; row: ApprovalRow; next: ApprovalRow };

const decisionSchema = z.object({
  decision: z.enum(['approve', 'reject', 'edit']),
  args: z.unknown().optional(),
  reason: z.string().trim().max(2000).optional(),
});

/** Deciding a request (approve, reject, edit; four-eyes edits become a new request) in one audited transaction; ApprovalService delegates here. */
export class ApprovalDecider {
  constructor(
    private readonly o: Omit<ApprovalConsumerDeps, 'log' | 'executions'> & {
      ttlMs: number;
      validateArgs?: (tool: string, args: unknown) => unknown;
      now: () => number;
    },
  ) {}

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
    const outcome = await this.o.db.transaction(async (trx): Promise<Decided> => {
      const now = this.o.now();
      const row = await this.o.repo.in(trx).locked({ id, projectId: ctx.projectId });
      if (row === undefined) return { kind: 'missing' };
      const policy = parsePolicy(row.policy);
      const refusal = decisionRefusal(policy, ctx.user, row, decision);
      if (refusal !== undefined) return { kind: 'refused', row, refusal };
      if (row.status !== 'pending') return { kind: 'done', row };
      if (Number(row.expires_at) <= now) {
        await expireRequest(this.o.repo.in(trx), this.o.audit, trx, row, now);
        return { kind: 'expired', row };
      }
      const edited = decision === 'edit' ? this.editedArgs(row, input) : null;
      // Four-eyes: an edit by someone who may not approve their own request becomes a new request in
      // the editor's name, so another person must approve what the editor changed.
      if (edited !== null && !policy.selfApproval) return this.supersede(trx, ctx, row, edited, reason, now);
      return this.record(trx, ctx, row, { decision, reason, edited }, now);
    });
    return this.report(ctx, id, decision, outcome);
  }

  /** The edited arguments of an edit decision, validated (by the caller's validator or the tool's input schema) and hashed. */
  private editedArgs(row: ApprovalRow, input: ApprovalDecisionInput): { json: string; hash: string } {
    if (input.args === undefined)
      throw new PlatformError('invalid_input', 'an edit needs the new arguments in "args"');
    const validateArgs = this.o.validateArgs;
    const validate =
      input.validate ?? (validateArgs === undefined ? undefined : (a: unknown) => validateArgs(row.tool, a));
    const json = canonicalJson(validatedEdit(row.tool, input.args, validate));
    return { json, hash: sha256Hex(json) };
  }

  /** Records an approval, rejection or self-approvable edit on a pending request, with its audit entry. */
  private async record(
    trx: Transaction<Database>,
    ctx: CallContext,
    row: ApprovalRow,
    d: DecisionRecord,
    now: number,
  ): Promise<Decided> {
    const repo = this.o.repo.in(trx);
    const status = d.decision === 'reject' ? 'rejected' : 'approved';
    const moved = await repo.decide(row.id, { status, ...d, by: ctx.user, at: now });
    if (!moved) return { kind: 'done', row: (await repo.locked({ id: row.id })) ?? row };
    await this.o.audit.append(decidedEntry(ctx, row, d), trx);
    return { kind: 'decided', row: await repo.byId(row.id) };
  }

  /** Closes `row` as edited and opens the edited call as a new pending request in the editor's name (same thread and step). */
  private async supersede(
    trx: Transaction<Database>,
    ctx: CallContext,
    row: ApprovalRow,
    edited: { json: string; hash: string },
    reason: string | null,
    now: number,
  ): Promise<Decided> {
    const repo = this.o.repo.in(trx);
    const next = pendingRow(
      {
        projectId: row.project_id,
        tool: row.tool,
        args: edited,
        risk: row.risk,
        reason: row.reason,
        policy: parsePolicy(row.policy),
        threadId: row.thread_id,
        step: row.step === null ? null : Number(row.step),
      },
      ctx.user,
      now,
      this.o.ttlMs,
    );
    const existing = await repo.locked({ pendingKey: next.pending_key! });
    if (existing !== undefined) await expireRequest(repo, this.o.audit, trx, existing, now);
    await repo.decide(row.id, {
      status: 'rejected',
      decision: 'edit',
      by: ctx.user,
      at: now,
      reason:
        reason ??
        `edited by ${ctx.user.name || ctx.user.userId}; the edited call needs another approver (${next.id})`,
      edited,
      supersededBy: next.id,
    });
    await repo.insert(next);
    await this.o.audit.append(
      decidedEntry(ctx, row, { decision: 'edit', reason, edited, supersededBy: next.id }),
      trx,
    );
    await this.o.audit.append(requestedEntry(ctx, next, row.id), trx);
    return { kind: 'superseded', row: await repo.byId(row.id), next };
  }

  /** The answer to a decision, and its events, once its transaction committed. */
  private report(ctx: CallContext, id: string, decision: string, outcome: Decided): ApprovalRequest {
    switch (outcome.kind) {
      case 'superseded': {
        const original = toRequest(outcome.row, this.o.now());
        const next = toRequest(outcome.next, this.o.now());
        ctx.log.info(
          { approvalId: id, next: next.id },
          'approval edited under four-eyes rules; the edited call needs another approver',
        );
        this.o.events.emit({
          type: 'approval.decided',
          projectId: ctx.projectId,
          at: this.o.now(),
          approval: original,
        });
        this.o.events.emit({
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
        return toRequest(outcome.row, this.o.now());
      case 'decided': {
        const approval = toRequest(outcome.row, this.o.now());
        ctx.log.info({ approvalId: id, decision }, 'approval decided');
        this.o.events.emit({
          type: 'approval.decided',
          projectId: ctx.projectId,
          at: approval.decision?.at ?? this.o.now(),
          approval,
        });
        return approval;
      }
    }
  }
}

/** Marks a pending request expired (once) with its audit entry, inside the caller's transaction. */
export async function expireRequest(
  repo: ApprovalRepository,
  audit: AuditLog,
  trx: Transaction<Database>,
  row: ApprovalRow,
  now: number,
): Promise<void> {
  if (!(await repo.expire(row.id))) return;
  await audit.append(
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
