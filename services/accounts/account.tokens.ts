import { randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ROLES, roleAtLeast, type Role } from '../../core/context.js';
import { parseInput, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { newId } from '../../core/ids.js';
import { requireMemberRole, requireUser, sha256 } from './account.access.js';
import type { AccountRepository } from './account.repository.js';
import type { AccountEvent } from './events.js';
import type { ApiTokenInfo, ApiTokenInput, TokenPrincipal } from './model.js';

const createTokenSchema = z.object({
  userId: z.string().min(1),
  projectId: z.string().min(1),
  name: z.string().trim().min(1, 'a name').max(200),
  role: z.enum(ROLES),
  scopes: z
    .array(z.string().regex(/^[a-z*][a-z0-9_.:*-]*$/, 'scopes like "datasets:read", "mcp" or "*"'))
    .min(1, 'at least one scope'),
  expiresInDays: z.number().positive().max(3650).optional(),
});
const TOKEN_PATTERN = /^via_([a-z]+_[a-z0-9]+)_([0-9a-f]{64})$/;

/** API tokens for machines and MCP clients: minting, resolving, revoking and listing; AccountService delegates here. */
export class ApiTokens {
  constructor(
    private readonly repo: AccountRepository,
    private readonly now: () => number,
    private readonly events: EventSink<AccountEvent> | undefined,
  ) {}

  /** See AccountService.createApiToken. */
  async create(input: ApiTokenInput): Promise<{ id: string; token: string; expiresAt: number | null }> {
    const data = parseInput(createTokenSchema, input, 'API token');
    const user = await requireUser(this.repo, data.userId);
    const creatorRole = await requireMemberRole(this.repo, data.projectId, user);
    if (!roleAtLeast(creatorRole, data.role)) {
      throw new PlatformError(
        'forbidden',
        `cannot create a token with role "${data.role}": your role in project "${data.projectId}" is "${creatorRole}"; pick "${creatorRole}" or lower`,
      );
    }
    await this.checkDeviceScopes(data.scopes, data.projectId, creatorRole);
    const id = newId('tok');
    const secret = randomBytes(32).toString('hex');
    const createdAt = this.now();
    const expiresAt =
      data.expiresInDays === undefined ? null : createdAt + Math.round(data.expiresInDays * 86_400_000);
    await this.repo.insertToken({
      id,
      token_hash: sha256(secret),
      name: data.name,
      user_id: user.id,
      project_id: data.projectId,
      role: data.role,
      scopes: JSON.stringify([...new Set(data.scopes)]),
      created_at: createdAt,
      expires_at: expiresAt,
      revoked_at: null,
      last_used_at: null,
    });
    this.events?.emit({
      type: 'accounts.token_created',
      projectId: data.projectId,
      at: createdAt,
      tokenId: id,
      userId: user.id,
    });
    return { id, token: `via_${id}_${secret}`, expiresAt };
  }

  /**
   * A device-scoped token (`device:<id>`) speaks for a device (e.g. asks for its feedback upload URLs):
   * only an admin of the project mints one, only for one named device registered in that project (a
   * row in `devices`, written by the fleet at the device's first heartbeat), never with a wildcard.
   */
  private async checkDeviceScopes(scopes: string[], projectId: string, creatorRole: Role): Promise<void> {
    const deviceScopes = scopes.filter(
      (s) => s === 'device' || s.startsWith('device:') || s.startsWith('devices'),
    );
    if (deviceScopes.length === 0) return;
    if (creatorRole !== 'admin') {
      throw new PlatformError(
        'forbidden',
        `only an admin of project "${projectId}" may create a device token (scope "${deviceScopes[0]}"); your role there is "${creatorRole}"; ask an admin`,
      );
    }
    for (const scope of deviceScopes) {
      const deviceId = scope.startsWith('device:') ? scope.slice('device:'.length) : '';
      if (!/^[a-z0-9][a-z0-9._:-]{0,127}$/.test(deviceId)) {
        throw new PlatformError(
          'invalid_input',
          `scope "${scope}" must name one device, as "device:<device id>" (no wildcards)`,
        );
      }
      // a device of another project is reported exactly like a missing one
      if ((await this.repo.deviceProject(deviceId)) !== projectId) {
        throw new PlatformError(
          'not_found',
          `device "${deviceId}" is not registered in project "${projectId}"; start it so it sends a heartbeat, then create its token (see GET /api/devices)`,
        );
      }
    }
  }

  /** See AccountService.authenticateToken. */
  async authenticate(token: string, projectId?: string): Promise<TokenPrincipal> {
    const match = typeof token === 'string' ? TOKEN_PATTERN.exec(token) : null;
    if (!match)
      throw new PlatformError(
        'unauthenticated',
        'malformed API token; expected "via_<id>_<secret>" as issued by createApiToken',
      );
    const [, id, secret] = match as unknown as [string, string, string];
    const row = await this.repo.token(id);
    const given = Buffer.from(sha256(secret), 'hex');
    if (!row || !timingSafeEqual(given, Buffer.from(row.token_hash, 'hex'))) {
      throw new PlatformError('unauthenticated', 'unknown API token; create a new one');
    }
    const now = this.now();
    if (row.revoked_at !== null)
      throw new PlatformError(
        'unauthenticated',
        `API token ${id} ("${row.name}") was revoked; create a new one`,
      );
    if (row.expires_at !== null && Number(row.expires_at) <= now) {
      throw new PlatformError(
        'unauthenticated',
        `API token ${id} ("${row.name}") expired at ${new Date(Number(row.expires_at)).toISOString()}; create a new one`,
      );
    }
    if (projectId !== undefined && projectId !== row.project_id) {
      throw new PlatformError(
        'forbidden',
        `API token ${id} belongs to project "${row.project_id}", not "${projectId}"; use a token created for "${projectId}"`,
      );
    }
    const user = await this.repo.user(row.user_id);
    if (!user || user.disabled)
      throw new PlatformError(
        'unauthenticated',
        `the owner of API token ${id} is disabled or gone; the token no longer works`,
      );
    const ownerRole = await requireMemberRole(this.repo, row.project_id, user);
    const role = roleAtLeast(ownerRole, row.role) ? row.role : ownerRole;
    // once a minute is precise enough for "last used", and spares a write on every request
    if (row.last_used_at === null || now - Number(row.last_used_at) >= 60_000) {
      await this.repo.touchToken(id, now);
    }
    return {
      userId: user.id,
      email: user.email,
      name: user.name,
      role,
      kind: 'token',
      scopes: JSON.parse(row.scopes) as string[],
      projectId: row.project_id,
      tokenId: id,
    };
  }

  /** See AccountService.revokeApiToken. */
  async revoke(id: string, by: { userId: string; projectId: string; role: Role } | 'system'): Promise<void> {
    const row = await this.repo.token(id);
    const allowed =
      row !== undefined &&
      (by === 'system' ||
        row.user_id === by.userId ||
        (by.role === 'admin' && by.projectId === row.project_id));
    if (!row || !allowed)
      throw new PlatformError(
        'not_found',
        `API token "${id}" not found among the tokens you may revoke (yours, or any of a project you administer); list them with listApiTokens`,
      );
    if (row.revoked_at !== null) return;
    const at = this.now();
    await this.repo.revokeToken(id, at);
    this.events?.emit({
      type: 'accounts.token_revoked',
      projectId: row.project_id,
      at,
      tokenId: id,
      userId: row.user_id,
    });
  }

  /** See AccountService.listApiTokens. */
  list(userId: string): Promise<ApiTokenInfo[]> {
    return this.repo.tokensOf(userId);
  }
}
