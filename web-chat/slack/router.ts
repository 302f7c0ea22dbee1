import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { ApprovalRequestedEvent } from '../../services/approvals/index.js';
import type { Logger } from '../../core/log.js';
import type { WebServices } from '../web-services.js';
import { approvalBlocks, parseUserMap, VisionBot, type BotReply, type ChatUser } from './bot.js';
import { sameToken, slackSignatureProblem } from './signature.js';

/** Settings of the chat-bot endpoints; each adapter is off while its secret is unset. */
export interface SlackOptions {
  services: WebServices;
  log: Logger;
  signingSecret: string | undefined;
  webhookUrl: string | undefined;
  /** `SLACK_USER_MAP`: chat user id → platform account email. */
  userMap?: string;
  mattermostToken?: string;
  /** Clock of the replay window (tests use a fixed one). */
  now?: () => number;
  /** fetch used for response_url and the webhook (tests pass a recorder). */
  fetch?: typeof fetch;
}

type RawRequest = Request & { rawBody?: Buffer };

const commandSchema = z.object({
  team_id: z.string().max(64).default(''),
  team_domain: z.string().max(200).default(''),
  user_id: z.string().min(1).max(64),
  user_name: z.string().max(200).default(''),
  text: z.string().max(4000).default(''),
  response_url: z.string().max(2000).optional(),
});
const mattermostSchema = commandSchema.extend({ token: z.string().min(1).max(200) });
const interactionSchema = z.object({
  type: z.string(),
  user: z.object({
    id: z.string().min(1).max(64),
    username: z.string().max(200).optional(),
    name: z.string().max(200).optional(),
    team_id: z.string().max(64).optional(),
  }),
  team: z.object({ id: z.string().max(64), domain: z.string().max(200).optional() }).nullish(),
  response_url: z.string().url().max(2000).optional(),
  actions: z
    .array(z.object({ action_id: z.string().max(100), value: z.string().max(200).optional() }))
    .default([]),
});

/**
 * `POST /integrations/slack/commands`, `/integrations/slack/interactions` (Slack v0 signatures)
 * and `/integrations/mattermost/commands` (token-verified), plus pending critical approvals posted
 * to `SLACK_WEBHOOK_URL` with Approve/Reject buttons.
 */
export function slackRouter(opts: SlackOptions): Router {
  const router = Router();
  const now = opts.now ?? Date.now;
  const doFetch = opts.fetch ?? fetch;
  const bot = new VisionBot(opts.services, opts.log, parseUserMap(opts.userMap));
  const form = express.urlencoded({
    extended: false,
    limit: '64kb',
    verify: (req, _res, buf) => {
      (req as RawRequest).rawBody = Buffer.from(buf);
    },
  });
  const refuse = (res: Response, status: number, text: string) =>
    res.status(status).type('text/plain').send(text);

  const verifySlack = (req: RawRequest, res: Response): boolean => {
    if (opts.signingSecret === undefined) {
      refuse(res, 404, 'the Slack integration is off: set SLACK_SIGNING_SECRET to turn it on');
      return false;
    }
    const problem = slackSignatureProblem({
      secret: opts.signingSecret,
      timestamp: req.get('x-slack-request-timestamp'),
      signature: req.get('x-slack-signature'),
      rawBody: req.rawBody,
      nowMs: now(),
    });
    if (problem !== undefined) {
      opts.log.warn({ problem }, 'Slack request refused');
      refuse(res, 401, `invalid Slack request: ${problem}`);
      return false;
    }
    return true;
  };

  router.post('/slack/commands', form, async (req: RawRequest, res) => {
    if (!verifySlack(req, res)) return;
    const parsed = commandSchema.safeParse(req.body);
    if (!parsed.success) return refuse(res, 400, 'malformed slash command');
    const c = parsed.data;
    res.json(
      await bot.command(
        {
          platform: 'slack',
          teamId: c.team_id,
          teamName: c.team_domain,
          userId: c.user_id,
          userName: c.user_name,
        },
        c.text,
      ),
    );
  });

  router.post('/slack/interactions', form, async (req: RawRequest, res) => {
    if (!verifySlack(req, res)) return;
    let payload: z.infer<typeof interactionSchema>;
    try {
      payload = interactionSchema.parse(
        JSON.parse(String((req.body as { payload?: unknown }).payload ?? '')),
      );
    } catch {
      return refuse(res, 400, 'malformed interaction payload');
    }
    if (payload.type !== 'block_actions' || payload.actions.length === 0) {
      res.status(200).end();
      return;
    }
    const action = payload.actions[0]!;
    const user: ChatUser = {
      platform: 'slack',
      teamId: payload.team?.id ?? payload.user.team_id ?? '',
      teamName: payload.team?.domain ?? '',
      userId: payload.user.id,
      userName: payload.user.username ?? payload.user.name ?? payload.user.id,
    };
    const reply = await bot.action(user, action.action_id, action.value ?? '');
    if (payload.response_url) await post(doFetch, payload.response_url, reply, opts.log);
    res.status(200).end();
  });

  router.post('/mattermost/commands', form, async (req, res) => {
    if (opts.mattermostToken === undefined)
      return refuse(
        res,
        404,
        'the Mattermost integration is off: set MATTERMOST_COMMAND_TOKEN to turn it on',
      );
    const parsed = mattermostSchema.safeParse(req.body);
    if (!parsed.success) return refuse(res, 400, 'malformed slash command');
    const c = parsed.data;
    if (!sameToken(c.token, opts.mattermostToken))
      return refuse(res, 401, 'invalid Mattermost command token');
    const reply = await bot.command(
      {
        platform: 'mattermost',
        teamId: c.team_id,
        teamName: c.team_domain,
        userId: c.user_id,
        userName: c.user_name,
      },
      c.text,
    );
    res.json({
      response_type: reply.response_type,
      text: reply.text === '' || reply.blocks === undefined ? reply.text : toMarkdown(reply),
    });
  });

  if (opts.webhookUrl !== undefined) {
    const url = opts.webhookUrl;
    opts.services.events.on((event) => {
      if (event.type !== 'approval.requested') return;
      const approval = (event as ApprovalRequestedEvent).approval;
      // critical steps, and every step of a plan the platform proposed (a retrain): nobody's chat is waiting on those
      const proposed = approval.requester.kind === 'system';
      if ((approval.risk !== 'critical' && !proposed) || approval.status !== 'pending') return;
      void post(doFetch, url, { response_type: 'in_channel', ...approvalBlocks(approval) }, opts.log);
    });
  }
  return router;
}

async function post(doFetch: typeof fetch, url: string, body: BotReply, log: Logger): Promise<void> {
  try {
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) log.warn({ status: res.status }, 'chat message post was refused');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'chat message post failed');
  }
}

function toMarkdown(reply: BotReply): string {
  const texts = (reply.blocks ?? []).flatMap((b) => {
    const t = (b as { text?: { text?: string } }).text?.text;
    return t ? [t] : [];
  });
  return [reply.text, ...texts].join('\n\n');
}
