import { systemPrincipal } from '../core/context.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/log.js';
import type { ToolLookup } from './define.js';
import type { ToolServices } from './services.js';
import { runTool } from './run-tool.js';

/** What one sweep did. */
export interface OrphanSweep {
  /** Approved calls re-run under their key (resumable tools) that finished. */
  resumed: string[];
  /** Approved calls closed as "interrupted: unknown outcome", or whose re-run failed. */
  closed: string[];
}

/**
 * Settles approved calls made outside a conversation (REST, MCP, the bot) whose process died
 * before their result was recorded: nobody will retry them, so without this they would stay
 * `started` for ever. Conversations resume their own steps (the agent runtime); here each orphan
 * goes through `runTool` again with its approval and its approved arguments, as the platform, which
 * takes the run over and re-runs a resumable tool under the same idempotency key, or marks it
 * interrupted with what to check. Both land on the audit log.
 */
export async function settleOrphanedRuns(
  tools: { registry: ToolLookup; services: ToolServices },
  log: Logger,
  limit = 20,
): Promise<OrphanSweep> {
  const { approvals } = tools.services;
  const sweep: OrphanSweep = { resumed: [], closed: [] };
  const orphans = await approvals.executions.orphaned(limit, { outsideConversations: true });
  for (const run of orphans) {
    const ctx = {
      user: systemPrincipal(),
      projectId: run.projectId,
      requestId: newId('req'),
      log,
      registry: tools.registry,
      services: tools.services,
    };
    try {
      const approval = await approvals.get(ctx, run.approvalId);
      const result = await runTool(ctx, run.tool, approval.approvedArgs, { approvalId: run.approvalId });
      (result.ok ? sweep.resumed : sweep.closed).push(run.approvalId);
      log.warn(
        { approvalId: run.approvalId, tool: run.tool, ok: result.ok },
        result.ok
          ? 'an approved call whose process stopped was run to its end'
          : 'an approved call whose process stopped was closed; the audit log says what to check',
      );
    } catch (err) {
      log.error({ err, approvalId: run.approvalId, tool: run.tool }, 'could not settle an orphaned run');
    }
  }
  return sweep;
}
