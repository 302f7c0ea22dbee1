import { argsHash } from '../services/approvals/canonical-json.js';
import { roleAtLeast } from '../services/context.js';
import { PlatformError, connectionFailure, describeZodError, isPlatformError, type ErrorCode } from '../services/errors.js';
import type { ToolContext } from './define.js';
import type { ToolAuditActor } from './services.js';

/** A structured tool failure a model or a person can act on; never a stack trace. */
export interface ToolError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/** What every tool call returns. `replayed` is set when an approved call had already run and its recorded output is returned. */
export type ToolResult<O = unknown> = { ok: true; output: O; replayed?: boolean } | { ok: false; error: ToolError };

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
export async function runTool(ctx: ToolContext, name: string, rawInput: unknown, opts: RunToolOptions = {}): Promise<ToolResult> {
  const { registry, services } = ctx;
  if (!registry.has(name)) return failure(new PlatformError('not_found', `unknown tool "${name}"; known tools: ${registry.names().join(', ')}`));
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
      new PlatformError('forbidden', `${name} changes things and needs the operator role or above; you are ${ctx.user.role}`, {
        risk: tool.risk,
        requiredRole: 'operator',
      }),
    );
  }
  const base = { projectId: ctx.projectId, actor: auditActor(ctx), tool: name, threadId: ctx.threadId, approvalId: opts.approvalId };
  if (gated) {
    if (opts.approvalId === undefined) {
      return failure(
        new PlatformError(
          'approval_required',
          `${name} is a ${tool.risk} tool: request an approval for these exact arguments, have it approved, then call again with its approvalId`,
          { tool: name, risk: tool.risk, args: input },
        ),
      );
    }
    try {
      await services.approvals.consume(ctx, { approvalId: opts.approvalId, tool: name, args: input, threadId: ctx.threadId });
    } catch (err) {
      // An approved call that already ran (a resumed agent step) returns what it produced the first time.
      const recorded = await recordedOutput(ctx, name, opts.approvalId, input);
      if (recorded !== undefined) return { ok: true, output: recorded, replayed: true };
      return failure(err);
    }
  }
  const started = Date.now();
  try {
    await services.audit.append({ ...base, action: 'tool.started', data: { args: input, risk: tool.risk } });
  } catch (err) {
    // nothing runs unless its start is on the audit log (e.g. arguments with a lone surrogate cannot be hashed)
    return failure(err);
  }
  try {
    const raw = await tool.run(ctx, input);
    const checked = tool.output.safeParse(raw);
    if (!checked.success) {
      throw new PlatformError('internal', `${name} returned output that does not match its schema: ${describeZodError(checked.error)}`);
    }
    const text = JSON.stringify(checked.data) ?? 'null';
    await services.audit.append({
      ...base,
      action: 'tool.finished',
      data: { ms: Date.now() - started, ...(text.length <= MAX_AUDITED_OUTPUT ? { output: checked.data } : { outputTruncated: true }) },
    });
    return { ok: true, output: checked.data };
  } catch (err) {
    const error = toToolError(err);
    if (error.code === 'internal') ctx.log.error({ err, tool: name }, 'tool failed unexpectedly');
    await services.audit.append({ ...base, action: 'tool.failed', data: { ms: Date.now() - started, error } });
    return { ok: false, error };
  }
}

/**
 * The output a finished call under `approvalId` recorded in the audit log, if any; only when the
 * approval binds this very call (tool, thread and arguments), so a used approval never reports
 * success for a different call.
 */
async function recordedOutput(ctx: ToolContext, tool: string, approvalId: string, input: Record<string, unknown>): Promise<unknown> {
  const approval = await ctx.services.approvals.get(ctx, approvalId).catch(() => undefined);
  if (approval === undefined || approval.status !== 'executed' || approval.tool !== tool || approval.threadId !== (ctx.threadId ?? null)) return undefined;
  if (argsHash(approval.approvedArgs) !== argsHash(input)) return undefined;
  const { entries } = await ctx.services.audit.query({ projectId: ctx.projectId, tool, action: 'tool.finished', order: 'desc', limit: 200 });
  const entry = entries.find((e) => e.approvalId === approvalId);
  return entry !== undefined && 'output' in entry.data ? entry.data.output : undefined;
}

/** Maps any thrown value to the structured error shape. */
export function toToolError(err: unknown): ToolError {
  if (isPlatformError(err)) return err.details === undefined ? { code: err.code, message: err.message } : { code: err.code, message: err.message, details: err.details };
  if (err instanceof Error && err.name === 'ZodError' && 'issues' in err) {
    return { code: 'invalid_input', message: describeZodError(err as unknown as Parameters<typeof describeZodError>[0]) };
  }
  const down = connectionFailure(err);
  if (down !== undefined) return { code: down.code, message: down.message };
  return { code: 'internal', message: `unexpected error: ${err instanceof Error ? err.message : String(err)}` };
}

function failure(err: unknown): ToolResult {
  return { ok: false, error: toToolError(err) };
}
