import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { refusalReason, type ApprovalRequest } from '../services/approvals/index.js';
import type { CallContext } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import type { AnyTool } from '../tools/define.js';
import { runTool } from '../tools/run-tool.js';
import {
  errorResult,
  guarded,
  okResult,
  progressReporter,
  resultOf,
  throwIfAborted,
  toolContextOf,
  type McpCaller,
  type McpExtra,
} from './call.js';
import { canElicitForm } from './clarify.js';
import type { McpServices } from './services.js';

/** The pending approval a write or critical call created, as `_meta["visioninapp/approval"]` of its result. */
export interface PendingApprovalInfo {
  approvalId: string;
  tool: string;
  risk: string;
  status: string;
  args: unknown;
  whoMayApprove: string;
  minRole: string;
  where: string[];
  next: string;
}

const DECISION_SCHEMA = {
  type: 'object' as const,
  properties: {
    decision: {
      type: 'string' as const,
      title: 'Decision',
      enum: ['approve', 'reject'],
      description: 'approve runs exactly these arguments once; reject runs nothing',
    },
    reason: { type: 'string' as const, title: 'Reason', description: 'optional, recorded in the audit log' },
  },
  required: ['decision'],
};

/** Where a request can be decided, for people. */
export function whereToApprove(services: McpServices, approvalId: string): string[] {
  return [
    `web: ${services.publicUrl} → Approvals (or POST ${services.publicUrl}/api/approvals/${approvalId}/decide)`,
    `Slack or Mattermost: /vision approve ${approvalId}`,
    `an MCP client of someone allowed to approve: decide_approval with id "${approvalId}"`,
  ];
}

/** The info block of a pending approval. */
export function pendingInfo(services: McpServices, approval: ApprovalRequest): PendingApprovalInfo {
  return {
    approvalId: approval.id,
    tool: approval.tool,
    risk: approval.risk,
    status: approval.status,
    args: approval.approvedArgs,
    whoMayApprove: approval.policy.summary,
    minRole: approval.policy.minRole,
    where: whereToApprove(services, approval.id),
    next: `call approvals_wait with {"approvalId": "${approval.id}"} to wait for the decision; it then runs the approved call once`,
  };
}

/** The result of a call that waits for someone's approval: nothing ran yet. */
export function pendingResult(
  services: McpServices,
  approval: ApprovalRequest,
  note?: string,
): CallToolResult {
  const info = pendingInfo(services, approval);
  const text = [
    `pending approval: ${approval.tool} (${approval.risk}) has not run; it waits for approval ${approval.id}.${note ? ` ${note}` : ''}`,
    `Arguments: ${JSON.stringify(approval.approvedArgs)}`,
    `Who may approve: ${info.whoMayApprove}.`,
    `Where: ${info.where.join('; ')}.`,
    `Next: ${info.next}.`,
  ].join('\n');
  return { content: [{ type: 'text', text }], isError: true, _meta: { 'visioninapp/approval': info } };
}

/** Whether this client can be asked through elicitation and this caller may decide the request under its policy. */
export function canElicit(server: McpServer, caller: McpCaller, approval: ApprovalRequest): boolean {
  if (!canElicitForm(server)) return false;
  return refusalReason(approval.policy, caller.principal, approval.requester.userId) === undefined;
}

/** Asks the person at the client to approve or reject the exact arguments; undefined when they dismissed it or it failed. */
export async function elicitDecision(
  server: McpServer,
  approval: ApprovalRequest,
  extra: McpExtra,
  log: CallContext['log'],
): Promise<{ decision: 'approve' | 'reject'; reason?: string } | undefined> {
  const message = [
    `Approve ${approval.tool} (${approval.risk})?`,
    `Approval ${approval.id}. ${approval.policy.summary}.`,
    'It runs once with exactly these arguments:',
    JSON.stringify(approval.approvedArgs, null, 2),
  ].join('\n');
  try {
    const answer = await server.server.elicitInput(
      { mode: 'form', message, requestedSchema: DECISION_SCHEMA },
      { signal: extra.signal, timeout: 10 * 60_000 },
    );
    if (answer.action === 'decline') return { decision: 'reject', reason: 'declined in the MCP client' };
    if (answer.action !== 'accept') return undefined;
    const parsed = z
      .object({ decision: z.enum(['approve', 'reject']), reason: z.string().max(2000).optional() })
      .safeParse(answer.content);
    if (!parsed.success) return undefined;
    return parsed.data.reason
      ? { decision: parsed.data.decision, reason: parsed.data.reason }
      : { decision: parsed.data.decision };
  } catch (err) {
    log.warn(
      { err: (err as Error).message, approvalId: approval.id },
      'elicitation failed; the approval stays pending',
    );
    return undefined;
  }
}

/**
 * A write or critical call from an MCP client: validates, checks the role, requests an approval
 * bound to the exact arguments, asks the person through elicitation when the client supports it
 * and the policy lets them decide, runs it once on approval, and otherwise returns "pending approval".
 */
export async function gatedCall(
  server: McpServer,
  services: McpServices,
  caller: McpCaller,
  ctx: CallContext,
  tool: AnyTool,
  rawArgs: unknown,
  extra: McpExtra,
): Promise<CallToolResult> {
  const tctx = toolContextOf(services, ctx, extra);
  let args: Record<string, unknown>;
  try {
    args = services.registry.parseInput(tool.name, rawArgs);
  } catch {
    return resultOf(await runTool(tctx, tool.name, rawArgs));
  }
  // A viewer is refused by runTool before any approval request exists.
  if (ctx.user.role === 'viewer') return resultOf(await runTool(tctx, tool.name, args));
  const approval = (await services.approvals.request(ctx, {
    tool: tool.name,
    args,
    risk: tool.risk,
    reason: `${tool.name} called from MCP client${caller.clientName ? ` "${caller.clientName}"` : ''} by ${ctx.user.name}`,
  })) as ApprovalRequest;
  if (!canElicit(server, caller, approval)) return pendingResult(services, approval);
  const answer = await elicitDecision(server, approval, extra, ctx.log);
  throwIfAborted(extra.signal);
  if (answer === undefined)
    return pendingResult(
      services,
      approval,
      'The approval prompt was dismissed; it can still be approved elsewhere.',
    );
  const decided = (await services.approvals.decide(ctx, approval.id, {
    decision: answer.decision,
    reason:
      answer.reason ??
      (answer.decision === 'approve' ? 'approved in the MCP client' : 'rejected in the MCP client'),
  })) as ApprovalRequest;
  if (decided.status === 'rejected') {
    return errorResult(
      { code: 'forbidden', message: `${tool.name} was rejected (approval ${approval.id}); nothing ran` },
      { 'visioninapp/approval': pendingInfo(services, decided) },
    );
  }
  return resultOf(await runTool(tctx, tool.name, decided.approvedArgs, { approvalId: approval.id }), {
    'visioninapp/approvalId': approval.id,
  });
}

const waitInput = {
  approvalId: z
    .string()
    .min(1)
    .max(64)
    .describe('id of the approval request, e.g. apr_…, from a "pending approval" result'),
  timeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(3600)
    .default(300)
    .describe('how long to wait for a decision before answering "still pending"'),
};

const waitOutput = {
  approvalId: z.string().describe('the approval request'),
  tool: z.string().describe('the tool it covers'),
  status: z
    .enum(['executed', 'pending', 'rejected', 'expired', 'failed'])
    .describe('executed: the call ran; pending: no decision yet; failed: it ran and failed'),
  decidedBy: z.string().optional().describe('who decided, with their role'),
  reason: z.string().optional().describe('the decision reason'),
  output: z.unknown().optional().describe('what the tool returned, when executed'),
  error: z.string().optional().describe('why it failed, when failed'),
};

const POLL_MS = 1000;

/** Registers `approvals_wait`: waits for a decision (with progress and a timeout), then runs the approved call exactly once. */
export function registerApprovalsWait(
  server: McpServer,
  services: McpServices,
  contextOf: (extra: McpExtra) => CallContext,
): void {
  server.registerTool(
    'approvals_wait',
    {
      title: 'Wait for an approval and run the call',
      description:
        'Wait until someone approves or rejects a pending approval (created by a write or critical tool call), then run the approved call exactly once and return its output. Sends progress while waiting; answers "pending" after the timeout (call it again to keep waiting).',
      inputSchema: waitInput,
      outputSchema: waitOutput,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ approvalId, timeoutSeconds }, extra) =>
      guarded(async () => {
        const ctx = contextOf(extra);
        let approval = (await services.approvals.get(ctx, approvalId)) as ApprovalRequest;
        if (approval.requester.userId !== ctx.user.userId && ctx.user.role !== 'admin') {
          throw new PlatformError(
            'forbidden',
            `approval ${approvalId} was requested by ${approval.requester.name}; only they (or an admin) run it`,
          );
        }
        const progress = progressReporter(extra);
        const started = Date.now();
        const deadline = started + timeoutSeconds * 1000;
        let wake: (() => void) | undefined;
        const off = services.events.on((e) => {
          if (
            e.type === 'approval.decided' &&
            (e as { approval?: { id?: string } }).approval?.id === approvalId
          )
            wake?.();
        });
        const onAbort = () => wake?.();
        extra.signal.addEventListener('abort', onAbort);
        try {
          while (approval.status === 'pending' && Date.now() < deadline && !extra.signal.aborted) {
            const waited = Math.round((Date.now() - started) / 1000);
            progress?.({
              message: `waiting for approval ${approvalId} (${approval.tool}, ${approval.policy.summary}); ${waited}s of ${timeoutSeconds}s`,
              fraction: (Date.now() - started) / (timeoutSeconds * 1000),
            });
            // Woken by the decision event of this instance; the poll covers decisions taken on other instances.
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))).unref();
            });
            wake = undefined;
            approval = (await services.approvals.get(ctx, approvalId)) as ApprovalRequest;
          }
        } finally {
          off();
          extra.signal.removeEventListener('abort', onAbort);
        }
        throwIfAborted(extra.signal);
        const base = { approvalId, tool: approval.tool };
        const by = approval.decision
          ? {
              decidedBy: `${approval.decision.by.name} (${approval.decision.by.role})`,
              ...(approval.decision.reason ? { reason: approval.decision.reason } : {}),
            }
          : {};
        switch (approval.status) {
          case 'pending': {
            const pending = pendingResult(services, approval, `Still no decision after ${timeoutSeconds}s.`);
            return { ...pending, isError: false, structuredContent: { ...base, status: 'pending' } };
          }
          case 'rejected':
            return { ...okResult({ ...base, status: 'rejected', ...by }), isError: false };
          case 'expired':
            return okResult({ ...base, status: 'expired' });
        }
        const tctx = toolContextOf(services, ctx, extra);
        const result = await runTool(tctx, approval.tool, approval.approvedArgs, { approvalId });
        if (!result.ok) {
          return {
            ...okResult({
              ...base,
              status: 'failed',
              ...by,
              error: `${result.error.code}: ${result.error.message}`,
            }),
            isError: true,
          };
        }
        return okResult({ ...base, status: 'executed', ...by, output: result.output });
      }),
  );
}
