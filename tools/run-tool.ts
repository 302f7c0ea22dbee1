import { sleep } from '../core/retry.js';
import { argsHash } from '../services/approvals/canonical-json.js';
import { roleAtLeast } from '../core/context.js';
import {
  PlatformError,
  connectionFailure,
  describeZodError,
  isPlatformError,
  type ErrorCode,
} from '../core/errors.js';
import type { AnyTool, ToolContext } from './define.js';
import type { ToolAuditActor } from './services.js';

/** A structured tool failure a model or a person can act on; never a stack trace. */
export interface ToolError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/** What every tool call returns. `replayed` is set when an approved call had already run and its recorded output is returned. */
/** `resumed` is set when the run was taken over after its process died and re-run under the same idempotency key. */
export type ToolResult<O = unknown> =
  { ok: true; output: O; replayed?: boolean; resumed?: boolean } | { ok: false; error: ToolError };

/** Options of one call: the approval that covers a write or critical call. */
export interface RunToolOptions {
  approvalId?: string;
}

const MAX_AUDITED_OUTPUT = 16_000;

/** The audit actor of a call context. */
export function auditActor(ctx: ToolContext): ToolAuditActor {
  return { id: ctx.user.userId, kind: ctx.user.kind };
}

/**
 * Runs one tool: validates the input, checks the caller's role and, for write and critical tools,
 * consumes the approval whose hash must match these exact arguments; runs it, validates the output,
 * and writes tool.started / tool.finished / tool.failed audit entries. Never throws for a tool's
 * own failure: it returns `{ ok: false, error }`.
 */
export async function runTool(
  ctx: ToolContext,
  name: string,
  rawInput: unknown,
  opts: RunToolOptions = {},
): Promise<ToolResult> {
  const { registry, services } = ctx;
  if (!registry.has(name))
    return failure(
      new PlatformError('not_found', `unknown tool "${name}"; known tools: ${registry.names().join(', ')}`),
    );
  const tool = registry.get(name);
  let input: Record<string, unknown>;
  try {
    input = registry.parseInput(name, rawInput);
  } catch (err) {
    return failure(err);
  }
  const gated = tool.risk !== 'read' && tool.authorizesItself !== true;
  if (gated && !roleAtLeast(ctx.user.role, 'operator')) {
    return failure(
      new PlatformError(
        'forbidden',
        `${name} changes things and needs the operator role or above; you are ${ctx.user.role}`,
        {
          risk: tool.risk,
          requiredRole: 'operator',
        },
      ),
    );
  }
  const base = auditBase(ctx, name, opts.approvalId);
  if (!gated) {
    const started = Date.now();
    try {
      await services.audit.append({
        ...base,
        action: 'tool.started',
        data: { args: input, risk: tool.risk },
      });
    } catch (err) {
      // nothing runs unless its start is on the audit log (e.g. arguments with a lone surrogate cannot be hashed)
      return failure(err);
    }
    const result = await execute(ctx, tool, input);
    const data = {
      ms: Date.now() - started,
      ...(result.ok ? auditedOutput(result.output) : { error: result.error }),
    };
    await services.audit.append({ ...base, action: result.ok ? 'tool.finished' : 'tool.failed', data });
    return result;
  }
  if (opts.approvalId === undefined) {
    return failure(
      new PlatformError(
        'approval_required',
        `${name} is a ${tool.risk} tool: request an approval for these exact arguments, have it approved, then call again with its approvalId`,
        { tool: name, risk: tool.risk, args: input },
      ),
    );
  }
  const approvalId = opts.approvalId;
  // a step run before (a resumed conversation, a retried call) is settled from its execution record
  const earlier = await services.approvals.execution(ctx, approvalId).catch(() => undefined);
  if (earlier !== undefined) {
    return afterRefusal(
      ctx,
      tool,
      approvalId,
      input,
      new PlatformError(
        'conflict',
        `approval ${approvalId} was already used; an approval runs its tool once`,
      ),
    );
  }
  try {
    // consumes the approval and records the run as started in one transaction
    await services.approvals.consume(ctx, {
      approvalId,
      tool: name,
      args: input,
      threadId: ctx.threadId,
      risk: tool.risk,
    });
  } catch (err) {
    return afterRefusal(ctx, tool, approvalId, input, err);
  }
  return executeApproved(ctx, tool, approvalId, input, 1);
}

/** Runs an approved call this process owns, renewing its lease, and records the outcome with its audit entry. */
async function executeApproved(
  ctx: ToolContext,
  tool: AnyTool,
  approvalId: string,
  input: Record<string, unknown>,
  attempt: number,
): Promise<ToolResult> {
  const { approvals } = ctx.services;
  const started = Date.now();
  const leaseMs = approvals.executions.leaseMs;
  const renew = setInterval(
    () => {
      approvals
        .renewExecution(approvalId)
        .catch((err: unknown) =>
          ctx.log.warn({ err, approvalId }, 'could not renew the lease of a running tool'),
        );
    },
    Math.max(Math.floor(leaseMs / 3), 50),
  );
  renew.unref();
  let result: ToolResult;
  try {
    result = await execute({ ...ctx, idempotencyKey: approvalId }, tool, input);
  } finally {
    clearInterval(renew);
  }
  const ms = Date.now() - started;
  await approvals.finishExecution(
    ctx,
    approvalId,
    result.ok
      ? { status: 'finished', output: result.output, audit: { ms, attempt, ...auditedOutput(result.output) } }
      : { status: 'failed', error: result.error, audit: { ms, attempt, error: result.error } },
  );
  return attempt > 1 && result.ok ? { ...result, resumed: true } : result;
}

/**
 * An approval that cannot be consumed may still be this very call run before: a finished run
 * returns its recorded output, a failed one its error; a run whose process died (lease expired) is
 * taken over and re-run under the same idempotency key when the tool is resumable, or marked
 * interrupted with what to check; a run still owned by a live process is waited for.
 */
async function afterRefusal(
  ctx: ToolContext,
  tool: AnyTool,
  approvalId: string,
  input: Record<string, unknown>,
  refusal: unknown,
): Promise<ToolResult> {
  const { approvals } = ctx.services;
  const hash = argsHash(input);
  const deadline = Date.now() + approvals.executions.leaseMs * 3 + 5_000;
  for (;;) {
    const run = await approvals.execution(ctx, approvalId).catch(() => undefined);
    if (run === undefined) {
      const recorded = await recordedOutput(ctx, tool.name, approvalId, input);
      return recorded === undefined ? failure(refusal) : { ok: true, output: recorded, replayed: true };
    }
    // only the very call the approval bound: a used approval never reports anything for a different call
    if (run.tool !== tool.name || run.argsHash !== hash || run.threadId !== (ctx.threadId ?? null))
      return failure(refusal);
    switch (run.status) {
      case 'finished':
        return { ok: true, output: run.output, replayed: true };
      case 'failed':
      case 'interrupted':
        return {
          ok: false,
          error: toToolError(
            new PlatformError(
              (run.error?.code ?? 'internal') as ErrorCode,
              run.error?.message ?? 'the step failed',
              run.error?.details,
            ),
          ),
        };
      case 'started':
        break;
    }
    const mine = await approvals.takeOverExecution(ctx, approvalId);
    if (mine !== undefined) return resumeInterrupted(ctx, tool, approvalId, input, mine.attempt);
    if (Date.now() > deadline) {
      return failure(
        new PlatformError(
          'conflict',
          `${tool.name} under approval ${approvalId} is still running in another process (attempt ${run.attempt}); wait for it to finish and look again`,
          {
            approvalId,
            attempt: run.attempt,
          },
        ),
      );
    }
    await sleep(Math.min(500, Math.max(run.leaseUntil - Date.now(), 50)), ctx.signal);
  }
}

/** A run whose process died: re-run under its key when the tool is resumable, otherwise mark it interrupted and say what to check. */
async function resumeInterrupted(
  ctx: ToolContext,
  tool: AnyTool,
  approvalId: string,
  input: Record<string, unknown>,
  attempt: number,
): Promise<ToolResult> {
  const base = auditBase(ctx, tool.name, approvalId);
  if (tool.resumable === true) {
    ctx.log.warn(
      { approvalId, tool: tool.name, attempt },
      'resuming an approved step its process did not finish',
    );
    await ctx.services.audit.append({
      ...base,
      action: 'tool.resumed',
      data: { attempt, reason: 'the process running it stopped before its result was recorded' },
    });
    return executeApproved(ctx, tool, approvalId, input, attempt);
  }
  const check =
    tool.checkAfterInterruption ?? `check the state of what ${tool.name} changes before asking again`;
  const error: ToolError = {
    code: 'conflict',
    message: `interrupted: unknown outcome. The server stopped while ${tool.name} ran under approval ${approvalId} and it cannot be safely re-run: ${check}; to run it again, ask again (a new approval)`,
    details: { outcome: 'unknown', approvalId, tool: tool.name },
  };
  await ctx.services.approvals.finishExecution(ctx, approvalId, {
    status: 'interrupted',
    error,
    audit: { attempt, error },
  });
  return { ok: false, error };
}

/** What every audit entry of one tool call carries: project, actor, tool, thread and approval. */
function auditBase(ctx: ToolContext, tool: string, approvalId: string | undefined) {
  return { projectId: ctx.projectId, actor: auditActor(ctx), tool, threadId: ctx.threadId, approvalId };
}

/** Runs the tool and validates its output; a tool's own failure becomes `{ ok: false }`. */
async function execute(ctx: ToolContext, tool: AnyTool, input: Record<string, unknown>): Promise<ToolResult> {
  try {
    const raw = await tool.run(ctx, input);
    const checked = tool.output.safeParse(raw);
    if (!checked.success) {
      throw new PlatformError(
        'internal',
        `${tool.name} returned output that does not match its schema: ${describeZodError(checked.error)}`,
      );
    }
    return { ok: true, output: checked.data };
  } catch (err) {
    const error = toToolError(err);
    if (error.code === 'internal') ctx.log.error({ err, tool: tool.name }, 'tool failed unexpectedly');
    return { ok: false, error };
  }
}

function auditedOutput(output: unknown): Record<string, unknown> {
  const text = JSON.stringify(output) ?? 'null';
  return text.length <= MAX_AUDITED_OUTPUT ? { output } : { outputTruncated: true };
}

/**
 * The output a finished call under `approvalId` recorded in the audit log, if any (approvals used
 * before executions were recorded); only when the approval binds this very call.
 */
async function recordedOutput(
  ctx: ToolContext,
  tool: string,
  approvalId: string,
  input: Record<string, unknown>,
): Promise<unknown> {
  const approval = await ctx.services.approvals.get(ctx, approvalId).catch(() => undefined);
  if (
    approval === undefined ||
    approval.status !== 'executed' ||
    approval.tool !== tool ||
    approval.threadId !== (ctx.threadId ?? null)
  )
    return undefined;
  if (argsHash(approval.approvedArgs) !== argsHash(input)) return undefined;
  const { entries } = await ctx.services.audit.query({
    projectId: ctx.projectId,
    tool,
    action: 'tool.finished',
    order: 'desc',
    limit: 200,
  });
  const entry = entries.find((e) => e.approvalId === approvalId);
  return entry !== undefined && 'output' in entry.data ? entry.data.output : undefined;
}

/** Maps any thrown value to the structured error shape. */
export function toToolError(err: unknown): ToolError {
  if (isPlatformError(err))
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  if (err instanceof Error && err.name === 'ZodError' && 'issues' in err) {
    return {
      code: 'invalid_input',
      message: describeZodError(err as unknown as Parameters<typeof describeZodError>[0]),
    };
  }
  const down = connectionFailure(err);
  if (down !== undefined) return { code: down.code, message: down.message };
  return {
    code: 'internal',
    message: `unexpected error: ${err instanceof Error ? err.message : String(err)}`,
  };
}

function failure(err: unknown): ToolResult {
  return { ok: false, error: toToolError(err) };
}
