import { z } from 'zod';
import type { ThreadView } from '../../agent/runtime.js';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import type { ApprovalRequest } from '../../services/approvals/index.js';
import type { CallContext } from '../../core/context.js';
import { isPlatformError, PlatformError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/log.js';
import { runTool } from '../../tools/run-tool.js';
import { toolContext, type WebServices } from '../web-services.js';
import { isFinalJob } from '../../services/training/model.js';
import { isFinalRollout } from '../../services/fleet/model.js';
import { answerBlocks, escapeMrkdwn } from './answer-blocks.js';

/** A chat user as the chat platform names them. */
export interface ChatUser {
  /** `slack` or `mattermost`. */
  platform: 'slack' | 'mattermost';
  teamId: string;
  /** Workspace (Slack `team_domain`) or team (Mattermost) name; empty when the platform sent none. */
  teamName?: string;
  userId: string;
  userName: string;
}

/** A reply in Slack's message shape (Mattermost reads `text` and `response_type`). */
export interface BotReply {
  response_type: 'ephemeral' | 'in_channel';
  text: string;
  blocks?: unknown[];
  replace_original?: boolean;
}

/** Parses `SLACK_USER_MAP` ("U1=alice@x,U2=bob@x") into chat user id → email. */
export function parseUserMap(value: string | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const pair of (value ?? '').split(',')) {
    const [id, email] = pair.split('=').map((s) => s.trim());
    if (id && email) map.set(id, email.toLowerCase());
  }
  return map;
}

/**
 * Every `/vision` verb and what it may change; test/security/mutation-matrix.test.ts holds each to it:
 * `nothing` (reads), `tool` (runs that tool through runTool; deciding an approval is the approval
 * itself), `agent` (hands the request to the agent, whose every changing step waits for an
 * approval), or the chat user's own link (an account action the chat-link service checks and audits).
 */
export const BOT_COMMANDS = {
  help: 'nothing',
  approvals: 'nothing',
  status: 'nothing',
  rollout: 'nothing',
  approve: { tool: 'decide_approval' },
  reject: { tool: 'decide_approval' },
  link: { exempt: 'own-credential' },
  ask: 'agent',
} as const;

const HELP = [
  '`/vision approvals` pending approvals with buttons',
  '`/vision approve ID` approve a request',
  '`/vision reject ID reason` reject a request',
  '`/vision status` what runs now',
  '`/vision rollout ID` progress of a rollout',
  '`/vision link` link your chat account to your VisionInApp account',
  '`/vision ask REQUEST` ask the assistant (e.g. "deploy helmets@3 to line 3"); a question back comes with buttons',
].join('\n');

export { escapeMrkdwn };

/** The Block Kit message of one approval request, with Approve/Reject buttons while it is pending. */
export function approvalBlocks(a: ApprovalRequest): { text: string; blocks: unknown[] } {
  const args = JSON.stringify(a.approvedArgs, null, 1);
  const head = `${a.risk.toUpperCase()} approval \`${a.id}\`: *${escapeMrkdwn(a.tool)}*`;
  const decided = a.decision
    ? `\n*${a.status}* by ${escapeMrkdwn(a.decision.by.name)} (${a.decision.by.role})${a.decision.reason ? `: ${escapeMrkdwn(a.decision.reason)}` : ''}`
    : '';
  const body = `${head}\n${escapeMrkdwn(a.reason)}\n\`\`\`${escapeMrkdwn(args.length > 2500 ? `${args.slice(0, 2500)}…` : args)}\`\`\`\n_${escapeMrkdwn(a.policy.summary)}_ — requested by ${escapeMrkdwn(a.requester.name)}${decided}`;
  const blocks: unknown[] = [{ type: 'section', text: { type: 'mrkdwn', text: body } }];
  if (a.status === 'pending') {
    blocks.push({
      type: 'actions',
      block_id: `approval:${a.id}`,
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Approve' },
          style: 'primary',
          action_id: 'approve',
          value: a.id,
        },
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Reject' },
          style: 'danger',
          action_id: 'reject',
          value: a.id,
        },
      ],
    });
  }
  return { text: `${a.risk} approval ${a.id}: ${a.tool} (${a.status})`, blocks };
}

const choiceValue = z.object({ t: z.string().min(1).max(100), m: z.string().min(1).max(1500) });

/** A conversation's answer in Block Kit: what a question found as sections, else the report; the pending approval; a button per clarifying choice. */
export function conversationBlocks(view: ThreadView): { text: string; blocks: unknown[] } {
  const text =
    view.report ??
    (view.pendingApproval
      ? `Waiting for approval \`${view.pendingApproval.approvalId}\` of ${view.pendingApproval.tool}: \`/vision approve ${view.pendingApproval.approvalId}\``
      : `Status: ${view.status}`);
  const blocks: unknown[] = answerBlocks(view) ?? [
    { type: 'section', text: { type: 'mrkdwn', text: escapeMrkdwn(text) } },
  ];
  const choices = view.status === 'clarify' ? (view.plan?.choices ?? []) : [];
  if (choices.length > 0) {
    blocks.push({
      type: 'actions',
      block_id: `choices:${view.id}`,
      elements: choices.slice(0, 5).map((c, i) => ({
        type: 'button',
        text: { type: 'plain_text', text: c.label.slice(0, 75) },
        action_id: 'choose',
        value: JSON.stringify({ t: view.id, m: c.message.slice(0, 1500) }),
        ...(i === 0 ? { style: 'primary' } : {}),
      })),
    });
  }
  return { text, blocks };
}

/** The `/vision` commands and button actions, for any chat adapter; acts as the mapped platform user. */
export class VisionBot {
  constructor(
    private readonly s: WebServices,
    private readonly log: Logger,
    private readonly userMap: Map<string, string>,
    private readonly projectId = DEFAULT_PROJECT_ID,
  ) {}

  /** Runs one `/vision …` command. */
  async command(user: ChatUser, text: string): Promise<BotReply> {
    const [verb = 'help', ...rest] = text.trim().split(/\s+/).filter(Boolean);
    try {
      switch (verb.toLowerCase()) {
        case 'link':
          return await this.link(user);
        case 'approvals':
          return await this.approvals(await this.ctxOf(user));
        case 'approve':
          return await this.decide(await this.ctxOf(user), rest[0], 'approve');
        case 'reject':
          return await this.decide(await this.ctxOf(user), rest[0], 'reject', rest.slice(1).join(' '));
        case 'status':
          return await this.status(await this.ctxOf(user));
        case 'rollout':
          return await this.rollout(await this.ctxOf(user), rest[0]);
        case 'ask':
          return await this.ask(await this.ctxOf(user), rest.join(' '));
        case 'help':
          return ephemeral(`Commands:\n${HELP}`);
        default:
          return ephemeral(`Unknown command "${escapeMrkdwn(verb)}". Commands:\n${HELP}`);
      }
    } catch (err) {
      return ephemeral(this.explain(err));
    }
  }

  /** Handles an Approve/Reject button; the reply replaces the original message. */
  async action(user: ChatUser, actionId: string, approvalId: string): Promise<BotReply> {
    try {
      if (actionId === 'choose') {
        const picked = choiceValue.safeParse(JSON.parse(approvalId));
        if (!picked.success) return ephemeral('That button is out of date; ask again with `/vision ask …`.');
        return {
          ...(await this.ask(await this.ctxOf(user), picked.data.m, picked.data.t)),
          replace_original: false,
        };
      }
      if (actionId !== 'approve' && actionId !== 'reject')
        return ephemeral(`Unknown action "${escapeMrkdwn(actionId)}".`);
      const ctx = await this.ctxOf(user);
      const decided = await this.decideApproval(
        ctx,
        approvalId,
        actionId,
        actionId === 'reject' ? `rejected from ${user.platform} by ${user.userName}` : undefined,
      );
      return { response_type: 'in_channel', replace_original: true, ...approvalBlocks(decided) };
    } catch (err) {
      return { ...ephemeral(this.explain(err)), replace_original: false };
    }
  }

  // The code only starts a link: the signed-in person sees this chat user and workspace and confirms.
  private async link(user: ChatUser): Promise<BotReply> {
    const { code } = await this.s.chatLinks.createCode({
      platform: user.platform,
      teamId: user.teamId,
      teamName: user.teamName ?? '',
      userId: user.userId,
      userName: user.userName,
    });
    const minutes = this.s.chatLinks.codeTtlMinutes;
    return ephemeral(
      `Open ${this.s.publicUrl}/#link/${code} while signed in to VisionInApp, check that it names you (${escapeMrkdwn(user.userName || user.userId)}), and press Confirm within ${minutes} minutes. The link works once. Never confirm a link someone else sent you: whoever confirms it lets this chat account act as them.`,
    );
  }

  private async ctxOf(user: ChatUser): Promise<CallContext> {
    let userId = await this.s.chatLinks.resolve(user.platform, user.teamId, user.userId);
    if (userId === undefined) {
      const email = this.userMap.get(user.userId);
      if (email === undefined) {
        throw new PlatformError(
          'unauthenticated',
          `your ${user.platform} account is not linked to a VisionInApp account; run "/vision link" or ask an admin to add you to SLACK_USER_MAP`,
        );
      }
      const member = (await this.s.accounts.listMembers(this.projectId)).find((m) => m.email === email);
      if (member === undefined)
        throw new PlatformError(
          'forbidden',
          `${email} has no role in project "${this.projectId}"; ask an admin to add you`,
        );
      userId = member.userId;
    }
    const account = await this.s.accounts.getUser(userId);
    const role =
      account && !account.disabled ? await this.s.accounts.roleOf(this.projectId, userId) : undefined;
    if (account === undefined || role === undefined)
      throw new PlatformError(
        'forbidden',
        `your linked account has no role in project "${this.projectId}"; ask an admin to add you`,
      );
    return {
      user: { userId: account.id, email: account.email, name: account.name, role, kind: 'user' },
      projectId: this.projectId,
      requestId: newId('req'),
      log: this.log,
    };
  }

  private async approvals(ctx: CallContext): Promise<BotReply> {
    const pending = await this.s.approvals.pending(ctx);
    if (pending.length === 0) return ephemeral('No approvals are waiting.');
    const blocks = pending.slice(0, 10).flatMap((a) => [...approvalBlocks(a).blocks, { type: 'divider' }]);
    return { response_type: 'ephemeral', text: `${pending.length} approval(s) waiting`, blocks };
  }

  private async decide(
    ctx: CallContext,
    id: string | undefined,
    decision: 'approve' | 'reject',
    reason?: string,
  ): Promise<BotReply> {
    if (!id)
      return ephemeral(
        `Say which approval: \`/vision ${decision} ID${decision === 'reject' ? ' reason' : ''}\`; \`/vision approvals\` lists them.`,
      );
    if (decision === 'reject' && !reason) return ephemeral('Say why: `/vision reject ID reason`.');
    const decided = await this.decideApproval(ctx, id, decision, reason);
    return { response_type: 'in_channel', ...approvalBlocks(decided) };
  }

  private async decideApproval(
    ctx: CallContext,
    id: string,
    decision: 'approve' | 'reject',
    reason?: string,
  ): Promise<ApprovalRequest> {
    const result = await runTool(toolContext(this.s.tools, ctx), 'decide_approval', {
      approvalId: id,
      decision,
      ...(reason ? { reason } : {}),
    });
    if (!result.ok) throw new PlatformError(result.error.code, result.error.message);
    return this.s.approvals.get(ctx, id);
  }

  /** Hands a request to the agent; a clarifying question comes back with one button per choice. */
  private async ask(ctx: CallContext, message: string, threadId?: string): Promise<BotReply> {
    if (this.s.agent === undefined) return ephemeral('The assistant is not running on this server.');
    if (message.trim() === '')
      return ephemeral('Say what you want, e.g. `/vision ask deploy helmets@3 to line 3`.');
    const view = await this.s.agent.startConversation(ctx, { message, ...(threadId ? { threadId } : {}) });
    return { response_type: 'in_channel', ...conversationBlocks(view) };
  }

  private async status(ctx: CallContext): Promise<BotReply> {
    const lines: string[] = [];
    lines.push(`Approvals waiting: ${(await this.s.approvals.pending(ctx)).length}`);
    if (this.s.training) {
      const jobs = await this.s.training.list(ctx, { limit: 50 });
      const active = jobs.filter((j) => !isFinalJob(j.status));
      lines.push(
        `Training jobs running or queued: ${active.length}${active.length ? ` (${active.map((j) => `${j.id} ${j.status}`).join(', ')})` : ''}`,
      );
    }
    if (this.s.rollouts) {
      const rollouts = await this.s.rollouts.list(ctx, { limit: 50 });
      const active = rollouts.filter((r) => !isFinalRollout(r.state));
      lines.push(
        `Rollouts in progress: ${active.length}${active.length ? ` (${active.map((r) => `${r.id} ${r.state}`).join(', ')})` : ''}`,
      );
    }
    if (this.s.fleet) {
      const devices = await this.s.fleet.list(ctx);
      lines.push(
        `Devices online: ${devices.filter((d) => this.s.fleet!.isOnline(d.lastHeartbeatAt)).length} of ${devices.length}`,
      );
    }
    return ephemeral(lines.join('\n'));
  }

  private async rollout(ctx: CallContext, id: string | undefined): Promise<BotReply> {
    if (!id) return ephemeral('Say which rollout: `/vision rollout ID`.');
    if (!this.s.rollouts) return ephemeral('Rollouts are not enabled on this server yet.');
    const r = await this.s.rollouts.status(ctx, id);
    const devices = r.devices.map((d) => `• ${escapeMrkdwn(d.name)}: ${d.state}`).join('\n');
    return ephemeral(
      `Rollout \`${r.id}\` of ${escapeMrkdwn(r.model.ref)}: *${r.state}*, wave ${r.currentWave + 1} of ${r.waveCount}\n${devices}`,
    );
  }

  private explain(err: unknown): string {
    if (isPlatformError(err)) {
      if (err.code === 'forbidden' || err.code === 'unauthenticated')
        return `Refused: ${escapeMrkdwn(err.message)}`;
      return `Could not do that: ${escapeMrkdwn(err.message)}`;
    }
    this.log.error({ err }, 'chat command failed');
    return 'Something went wrong on the server; try again, and tell an admin if it keeps happening.';
  }
}

function ephemeral(text: string): BotReply {
  return { response_type: 'ephemeral', text };
}
