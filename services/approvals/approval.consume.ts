import { z } from 'zod';
import type { CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import type { Logger } from '../../core/log.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Db } from '../infra/db/port.js';
import { consumeRefusal, missingRefusal } from './approval.checks.js';
import type { ApprovalRepository } from './approval.repository.js';
import { actorOf, toRequest } from './approval.rows.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import type { ApprovalEvent } from './events.js';
import type { ExecutionLedger } from './execution-ledger.js';
import type { ApprovalConsumeInput, ApprovalRequest, ExecutionOutcome } from './model.js';
import { RISKS } from './policy.js';

const consumeSchema = z.object({
  approvalId: z.string().min(1).max(64),
  tool: z.string().min(1).max(100),
  args: z.unknown(),
  threadId: z.string().min(1).max(191).optional(),
  risk: z.enum(RISKS).optional(),
});

/** What ApprovalConsumer needs from ApprovalService. */
export interface ApprovalConsumerDeps {
  db: Db;
  repo: ApprovalRepository;
  audit: AuditLog;
  events: EventSink<ApprovalEvent>;
  log: Logger;
  executions: ExecutionLedger;
  now: () => number;
}

/** Using an approval: consuming it exactly once with the run's start, and recording how the run ended, each in one audited transaction. */
export class ApprovalConsumer {
  constructor(private readonly o: ApprovalConsumerDeps) {}

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

    const outcome = await this.o.db.transaction(async (trx) => {
      const now = this.o.now();
      const row = await this.o.repo.in(trx).locked({ id: approvalId, projectId: ctx.projectId });
      const refusal =
        row === undefined
          ? missingRefusal(approvalId, ctx.projectId)
          : consumeRefusal(row, { tool, hash, threadId, now });
      if (refusal !== undefined) return { ok: false as const, refusal, row };
      if (!(await this.o.repo.in(trx).consume(approvalId, ctx.user.userId, now))) {
        return {
          ok: false as const,
          refusal: new PlatformError(
            'conflict',
            `approval ${approvalId} was already used by another execution; ask for a new approval`,
          ),
          row,
        };
      }
      await this.o.audit.append(
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
      await this.o.executions.start(trx, ctx, { approvalId, tool, threadId, argsHash: hash });
      await this.o.audit.append(
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
        row: await this.o.repo.in(trx).byId(approvalId),
      };
    });

    if (outcome.ok) {
      const approval = toRequest(outcome.row, this.o.now());
      this.o.events.emit({
        type: 'approval.consumed',
        projectId: ctx.projectId,
        at: approval.consumedAt ?? this.o.now(),
        approval,
      });
      return approval;
    }
    await this.o.audit
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
      .catch((err: unknown) => this.o.log.error({ err, approvalId }, 'could not audit a refused approval'));
    ctx.log.warn({ approvalId, tool, code: outcome.refusal.code }, 'approval refused at execution');
    throw outcome.refusal;
  }

  /** Records how an execution ended together with its audit entry, in one transaction. */
  async finish(ctx: CallContext, approvalId: string, outcome: ExecutionOutcome): Promise<void> {
    const row = await this.o.executions.get(ctx.projectId, approvalId);
    await this.o.db.transaction(async (trx) => {
      await this.o.executions.finish(
        approvalId,
        outcome.status === 'finished'
          ? { status: 'finished', output: outcome.output }
          : { status: outcome.status, error: outcome.error },
        trx,
      );
      await this.o.audit.append(
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
}
