import { z } from 'zod';
import { defineTool } from './define.js';
import type { ToolApprovalView } from './services.js';

const approvalView = z.object({
  id: z.string().describe('approval request id'),
  tool: z.string().describe('tool the request covers'),
  risk: z.enum(['read', 'write', 'critical']).describe('risk of the tool'),
  status: z.string().describe('pending, approved, rejected, executed or expired'),
  reason: z.string().describe('one-line reason the step was proposed'),
  policy: z.string().describe('who may approve it, in one sentence'),
  threadId: z.string().nullable().describe('conversation the request belongs to, if any'),
});

/** What the tools show of an approval request. */
const viewOf = (a: ToolApprovalView): z.infer<typeof approvalView> => ({
  id: a.id,
  tool: a.tool,
  risk: a.risk,
  status: a.status,
  reason: a.reason,
  policy: a.policy.summary,
  threadId: a.threadId,
});

/** Lists approval requests (pending by default). */
export const listApprovals = defineTool({
  name: 'list_approvals',
  title: 'List approval requests',
  description:
    'List approval requests of the project, pending ones by default, optionally for one conversation. Use it to see what waits for a decision.',
  input: z.object({
    status: z
      .enum(['pending', 'approved', 'rejected', 'executed', 'expired'])
      .default('pending')
      .describe('which requests to list'),
    threadId: z.string().optional().describe('only requests of this conversation'),
    limit: z.number().int().min(1).max(100).default(20).describe('how many to return'),
  }),
  output: z.object({ approvals: z.array(approvalView).describe('matching requests, newest first') }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const rows = await ctx.services.approvals.list(ctx, input);
    return { approvals: rows.map(viewOf) };
  },
});

/** Approves, edits or rejects a request as the caller; the approvals service applies the policy. */
export const decideApproval = defineTool({
  name: 'decide_approval',
  title: 'Decide an approval request',
  description:
    'Approve, edit (with new arguments) or reject an approval request as the calling person. The policy decides who may: viewers never, critical steps need an approver. Never call this on your own initiative.',
  input: z.object({
    approvalId: z.string().min(1).describe('id of the approval request'),
    decision: z
      .enum(['approve', 'reject', 'edit'])
      .describe('approve, reject, or edit (approve with changed arguments)'),
    args: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('the changed arguments, only with decision "edit"'),
    reason: z.string().max(500).optional().describe('why, required by convention when rejecting'),
  }),
  output: approvalView,
  risk: 'write',
  idempotent: true,
  authorizesItself: true,
  async run(ctx, { approvalId, ...decision }) {
    return viewOf(await ctx.services.approvals.decide(ctx, approvalId, decision));
  },
});

const auditEntry = z.object({
  seq: z.number().describe('position in the project chain'),
  at: z.string().describe('when, ISO 8601'),
  actor: z.string().describe('user or token id that acted'),
  action: z.string().describe('what happened, e.g. tool.finished, approval.decided'),
  tool: z.string().nullable().describe('tool involved, if any'),
  threadId: z.string().nullable().describe('conversation, if any'),
  approvalId: z.string().nullable().describe('approval involved, if any'),
  data: z.record(z.string(), z.unknown()).describe('details recorded with the entry'),
});

/** Queries the audit log by conversation, user, tool, action and time. */
export const queryAudit = defineTool({
  name: 'query_audit',
  title: 'Query the audit log',
  description:
    'Read audit log entries of the project, filtered by conversation, user, tool, action or time range. Use it to answer "who approved the deployment" or "what ran in this conversation".',
  input: z.object({
    threadId: z.string().optional().describe('only entries of this conversation'),
    userId: z.string().optional().describe('only entries by this user or token id'),
    tool: z.string().optional().describe('only entries about this tool'),
    action: z.string().optional().describe('only this action, e.g. tool.finished'),
    sinceHours: z
      .number()
      .positive()
      .max(24 * 365)
      .optional()
      .describe('only entries from the last N hours'),
    limit: z.number().int().min(1).max(200).default(50).describe('how many entries to return'),
  }),
  output: z.object({
    total: z.number().describe('entries matching the filters'),
    entries: z.array(auditEntry).describe('matching entries, newest first'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, { sinceHours, ...q }) {
    const { total, entries } = await ctx.services.audit.query({
      projectId: ctx.projectId,
      ...q,
      ...(sinceHours !== undefined ? { from: Date.now() - sinceHours * 3_600_000 } : {}),
      order: 'desc',
    });
    return {
      total,
      entries: entries.map((e) => ({
        seq: e.seq,
        at: new Date(e.at).toISOString(),
        actor: e.actor.id,
        action: e.action,
        tool: e.tool,
        threadId: e.threadId,
        approvalId: e.approvalId,
        data: e.data,
      })),
    };
  },
});

/** Verifies the hash chain of the project's audit log. */
export const verifyAudit = defineTool({
  name: 'verify_audit',
  title: 'Verify the audit log',
  description:
    'Check that no audit entry of the project was edited, removed or reordered (hash chain verification). Returns ok and any problems found.',
  input: z.object({}),
  output: z.object({
    ok: z.boolean().describe('true when the chain is intact'),
    checked: z.number().describe('entries checked'),
    problems: z
      .array(
        z.object({
          seq: z.number().describe('entry position'),
          kind: z.string().describe('edited, missing or reordered'),
          detail: z.string().describe('what was found'),
        }),
      )
      .describe('problems found'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx) {
    const r = await ctx.services.audit.verify(ctx.projectId);
    return {
      ok: r.ok,
      checked: r.checked,
      problems: r.problems.map((p) => ({ seq: p.seq, kind: p.kind, detail: p.detail })),
    };
  },
});
