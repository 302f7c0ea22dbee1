import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseInput, PlatformError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/log.js';
import type { AuditLog } from '../audit/index.js';
import { isUniqueViolation } from '../infra/db/errors.js';
import type { Db } from '../infra/db/port.js';
import { sha256 } from './account.access.js';
import type { Database } from '../infra/db/schema.js';

/** A chat user as the chat platform names them, with the workspace (Slack) or team (Mattermost) they wrote from. */
export interface ChatIdentity {
  /** `slack` or `mattermost`. */
  platform: string;
  teamId: string;
  /** Workspace or team name as the chat platform sent it (`team_domain`); may be empty. */
  teamName: string;
  userId: string;
  userName: string;
}

/** A chat identity linked to a platform account: whoever writes as that chat user acts as the account. */
export interface ChatLink {
  id: string;
  platform: string;
  teamId: string;
  teamName: string;
  chatUserId: string;
  chatUserName: string;
  /** The platform account. */
  userId: string;
  createdAt: number;
}

/** What the confirmation page shows before anyone confirms a code. */
export interface PendingChatLink {
  platform: string;
  teamId: string;
  teamName: string;
  chatUserId: string;
  chatUserName: string;
  expiresAt: number;
}

/** The signed-in person confirming or removing a link, and the project whose audit chain records it. */
export interface ChatLinkActor {
  userId: string;
  kind: 'user' | 'token' | 'system';
  projectId: string;
}

/** Constructor options of ChatLinkService. */
export interface ChatLinkServiceOptions {
  db: Db;
  audit: AuditLog;
  log: Logger;
  /** How long a `/vision link` code can be confirmed (CHAT_LINK_CODE_TTL_MIN); default 10 minutes. */
  codeTtlMs?: number;
  now?: () => number;
}

const identitySchema = z.object({
  platform: z.enum(['slack', 'mattermost']),
  teamId: z.string().max(64),
  teamName: z.string().max(200),
  userId: z.string().min(1).max(64),
  userName: z.string().max(200),
});
const codeSchema = z.string().regex(/^[A-Za-z0-9_-]{16,100}$/, 'the code from "/vision link"');

type LinkRow = Database['chat_links'];

function toLink(r: LinkRow): ChatLink {
  return {
    id: r.id,
    platform: r.platform,
    teamId: r.team_id,
    teamName: r.team_name,
    chatUserId: r.chat_user_id,
    chatUserName: r.chat_user_name,
    userId: r.user_id,
    createdAt: Number(r.created_at),
  };
}

// What the audit trail records of a link (never the platform account's secrets).
function linkAudit(link: ChatLink): Record<string, string> {
  return {
    linkId: link.id,
    platform: link.platform,
    teamId: link.teamId,
    teamName: link.teamName,
    chatUserId: link.chatUserId,
    chatUserName: link.chatUserName,
  };
}

/**
 * Links between chat identities (Slack, Mattermost) and platform accounts, in the database: a chat user
 * asks for a short-lived one-time code, the signed-in person sees who asks and confirms it explicitly;
 * every link and unlink is an audit entry.
 */
export class ChatLinkService {
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly log: Logger;
  private readonly codeTtlMs: number;
  private readonly now: () => number;

  constructor(opts: ChatLinkServiceOptions) {
    this.db = opts.db;
    this.audit = opts.audit;
    this.log = opts.log;
    this.codeTtlMs = opts.codeTtlMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Minutes a new code stays valid (for the chat reply). */
  get codeTtlMinutes(): number {
    return Math.max(1, Math.round(this.codeTtlMs / 60_000));
  }

  /** Issues a one-time code for `identity`; earlier unused codes of the same chat user stop working. */
  async createCode(identity: ChatIdentity): Promise<{ code: string; expiresAt: number }> {
    const who = this.parseIdentity(identity);
    const code = randomBytes(24).toString('base64url');
    const now = this.now();
    const expiresAt = now + this.codeTtlMs;
    await this.db.transaction(async (trx) => {
      // one live code per chat user, and no pile of dead ones
      await trx
        .deleteFrom('chat_link_codes')
        .where((eb) =>
          eb.or([
            eb.and([
              eb('platform', '=', who.platform),
              eb('team_id', '=', who.teamId),
              eb('chat_user_id', '=', who.userId),
            ]),
            eb('expires_at', '<=', now),
          ]),
        )
        .execute();
      await trx
        .insertInto('chat_link_codes')
        .values({
          code_hash: sha256(code),
          platform: who.platform,
          team_id: who.teamId,
          team_name: who.teamName,
          chat_user_id: who.userId,
          chat_user_name: who.userName,
          created_at: now,
          expires_at: expiresAt,
          used_at: null,
        })
        .execute();
    });
    return { code, expiresAt };
  }

  /** Who asked for `code` (chat user, workspace), for the confirmation page; refuses unknown, used and expired codes. */
  async describeCode(code: string): Promise<PendingChatLink> {
    const row = await this.liveCode(code);
    return {
      platform: row.platform,
      teamId: row.team_id,
      teamName: row.team_name,
      chatUserId: row.chat_user_id,
      chatUserName: row.chat_user_name,
      expiresAt: Number(row.expires_at),
    };
  }

  /** Links the chat user who asked for `code` to `actor` (a signed-in person); the code works once. Audited. */
  async confirm(actor: ChatLinkActor, code: string): Promise<ChatLink> {
    if (actor.kind !== 'user')
      throw new PlatformError(
        'forbidden',
        'only a signed-in person can link a chat account; sign in to the web app and confirm there',
      );
    const row = await this.liveCode(code);
    const now = this.now();
    return this.db.transaction(async (trx) => {
      const claimed = await trx
        .updateTable('chat_link_codes')
        .set({ used_at: now })
        .where('code_hash', '=', row.code_hash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) throw this.deadCode();
      const previous = await trx
        .selectFrom('chat_links')
        .selectAll()
        .where('platform', '=', row.platform)
        .where('team_id', '=', row.team_id)
        .where('chat_user_id', '=', row.chat_user_id)
        .executeTakeFirst();
      if (previous !== undefined) await trx.deleteFrom('chat_links').where('id', '=', previous.id).execute();
      const link: ChatLink = {
        id: newId('clk'),
        platform: row.platform,
        teamId: row.team_id,
        teamName: row.team_name,
        chatUserId: row.chat_user_id,
        chatUserName: row.chat_user_name,
        userId: actor.userId,
        createdAt: now,
      };
      try {
        await trx
          .insertInto('chat_links')
          .values({
            id: link.id,
            platform: link.platform,
            team_id: link.teamId,
            team_name: link.teamName,
            chat_user_id: link.chatUserId,
            chat_user_name: link.chatUserName,
            user_id: link.userId,
            created_at: link.createdAt,
          })
          .execute();
      } catch (err) {
        if (isUniqueViolation(err))
          throw new PlatformError(
            'conflict',
            'this chat account was linked by someone else at the same moment; run "/vision link" again',
          );
        throw err;
      }
      await this.audit.append(
        {
          projectId: actor.projectId,
          actor: { id: actor.userId, kind: 'user' },
          action: 'chat_link.linked',
          data: {
            ...linkAudit(link),
            ...(previous !== undefined ? { replacedLinkOf: previous.user_id } : {}),
          },
        },
        trx,
      );
      this.log.info({ linkId: link.id, platform: link.platform, userId: link.userId }, 'chat account linked');
      return link;
    });
  }

  /** The platform account a chat user is linked to, if any. */
  async resolve(platform: string, teamId: string, chatUserId: string): Promise<string | undefined> {
    const row = await this.db.kysely
      .selectFrom('chat_links')
      .select('user_id')
      .where('platform', '=', platform)
      .where('team_id', '=', teamId)
      .where('chat_user_id', '=', chatUserId)
      .executeTakeFirst();
    return row?.user_id;
  }

  /** The chat accounts linked to `userId`, newest first. */
  async listFor(userId: string): Promise<ChatLink[]> {
    const rows = await this.db.kysely
      .selectFrom('chat_links')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(toLink);
  }

  /** Removes one of `actor`'s links; the chat user then acts as nobody until linked again. Audited. */
  async unlink(actor: ChatLinkActor, linkId: string): Promise<ChatLink> {
    return this.db.transaction(async (trx) => {
      const row = await trx
        .selectFrom('chat_links')
        .selectAll()
        .where('id', '=', linkId)
        .where('user_id', '=', actor.userId)
        .executeTakeFirst();
      if (row === undefined)
        throw new PlatformError(
          'not_found',
          `chat link "${linkId}" is not one of yours; list your links with GET /api/chat-links`,
        );
      await trx.deleteFrom('chat_links').where('id', '=', row.id).execute();
      const link = toLink(row);
      await this.audit.append(
        {
          projectId: actor.projectId,
          actor: { id: actor.userId, kind: actor.kind },
          action: 'chat_link.unlinked',
          data: linkAudit(link),
        },
        trx,
      );
      return link;
    });
  }

  private parseIdentity(identity: ChatIdentity): ChatIdentity {
    return parseInput(identitySchema, identity, 'chat user');
  }

  private async liveCode(code: string): Promise<Database['chat_link_codes']> {
    if (!codeSchema.safeParse(code).success) throw this.deadCode();
    const row = await this.db.kysely
      .selectFrom('chat_link_codes')
      .selectAll()
      .where('code_hash', '=', sha256(code))
      .executeTakeFirst();
    if (row === undefined || row.used_at !== null || Number(row.expires_at) <= this.now())
      throw this.deadCode();
    return row;
  }

  private deadCode(): PlatformError {
    return new PlatformError(
      'not_found',
      `this link code is unknown, already used or expired (codes work once, for ${this.codeTtlMinutes} minutes); run "/vision link" again in the chat`,
    );
  }
}
