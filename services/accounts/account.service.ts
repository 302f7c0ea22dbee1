import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ROLES, type Principal, type Role } from '../../core/context.js';
import { isPlatformError, parseInput, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/log.js';
import type { AuditLog } from '../audit/index.js';
import type { IdentityProvider } from '../infra/auth/port.js';
import { hashPassword } from '../infra/auth/password.js';
import { MemoryCache } from '../infra/cache/memory.js';
import type { Cache } from '../infra/cache/port.js';
import { isUniqueViolation } from '../infra/db/errors.js';
import type { Db } from '../infra/db/port.js';
import { requireProject, requireUser } from './account.access.js';
import { AccountRepository } from './account.repository.js';
import { SignIn } from './account.sign-in.js';
import { ApiTokens } from './account.tokens.js';
import type { AccountEvent } from './events.js';
import {
  BOOTSTRAP_ADMIN_EMAIL,
  DEFAULT_LOGIN_LOCKOUT,
  DEFAULT_PROJECT_ID,
  type ApiTokenInfo,
  type ApiTokenInput,
  type LoginLockout,
  type LoginResult,
  type Member,
  type Project,
  type TokenPrincipal,
  type User,
} from './model.js';

export { BOOTSTRAP_ADMIN_EMAIL, DEFAULT_PROJECT_ID } from './model.js';

/** Constructor options of AccountService. */
export interface AccountServiceOptions {
  db: Db;
  identity: IdentityProvider;
  log: Logger;
  events?: EventSink<AccountEvent>;
  now?: () => number;
  /** Idle lifetime of a session; each authenticated use slides it forward. Default 7 days. */
  sessionTtlMs?: number;
  /** Where failed sign-ins are counted per account (shared by every instance with Redis); an in-process cache when absent. */
  cache?: Cache;
  /** Records account lockouts. */
  audit?: Pick<AuditLog, 'append'>;
  lockout?: LoginLockout;
}

const roleSchema = z.enum(ROLES);
const passwordSchema = z.string().min(8, 'at least 8 characters').max(1024);
const createUserSchema = z.object({
  email: z.string().trim().toLowerCase().pipe(z.email('a valid email address')),
  name: z.string().trim().min(1, 'a name').max(200),
  password: passwordSchema.optional(),
  role: roleSchema,
  projectId: z.string().min(1),
});

/**
 * Projects, users, per-project roles, sessions and API tokens, on the Db port and the identity port.
 * Users and roles are here; sign-in and sessions are in `SignIn`, API tokens in `ApiTokens`, SQL in `AccountRepository`.
 */
export class AccountService {
  private readonly db: Db;
  private readonly repo: AccountRepository;
  private readonly identity: IdentityProvider;
  private readonly log: Logger;
  private readonly events: EventSink<AccountEvent> | undefined;
  private readonly now: () => number;
  private readonly signIn: SignIn;
  private readonly tokens: ApiTokens;

  constructor(opts: AccountServiceOptions) {
    this.db = opts.db;
    this.repo = new AccountRepository(opts.db.kysely);
    this.identity = opts.identity;
    this.log = opts.log;
    this.events = opts.events;
    this.now = opts.now ?? Date.now;
    this.signIn = new SignIn({
      repo: this.repo,
      identity: opts.identity,
      log: opts.log,
      events: opts.events,
      now: this.now,
      sessionTtlMs: opts.sessionTtlMs ?? 7 * 24 * 3600_000,
      cache: opts.cache ?? new MemoryCache(),
      audit: opts.audit,
      lockout: opts.lockout ?? DEFAULT_LOGIN_LOCKOUT,
    });
    this.tokens = new ApiTokens(this.repo, this.now, opts.events);
  }

  /** Creates the `default` project when missing; safe to call from several instances at once. */
  async ensureDefaultProject(): Promise<Project> {
    const existing = await this.repo.project(DEFAULT_PROJECT_ID);
    if (existing) return existing;
    try {
      await this.repo.insertProject({
        id: DEFAULT_PROJECT_ID,
        name: DEFAULT_PROJECT_ID,
        createdAt: this.now(),
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
    return (await this.repo.project(DEFAULT_PROJECT_ID))!;
  }

  /**
   * On first start (no admin anywhere) creates `admin@visioninapp.local` with a random password and
   * returns the credentials once, for the caller to print; returns undefined when an admin exists or
   * in Firebase mode (roles then come from custom claims).
   */
  async bootstrapAdmin(): Promise<{ email: string; password: string } | undefined> {
    if (this.identity.kind !== 'local') return undefined;
    await this.ensureDefaultProject();
    if (await this.repo.hasActiveAdmin()) return undefined;
    const password = randomBytes(18).toString('base64url');
    const existing = await this.repo.userByEmail(BOOTSTRAP_ADMIN_EMAIL);
    if (existing) {
      await this.setPassword(existing.id, password);
      await this.setRole(DEFAULT_PROJECT_ID, existing.id, 'admin');
      await this.repo.enableUser(existing.id);
    } else {
      try {
        await this.createUser({
          email: BOOTSTRAP_ADMIN_EMAIL,
          name: 'Administrator',
          password,
          role: 'admin',
          projectId: DEFAULT_PROJECT_ID,
        });
      } catch (err) {
        // Another instance starting at the same moment created the admin first; it printed the password.
        if (isPlatformError(err, 'conflict')) return undefined;
        throw err;
      }
    }
    this.log.info({ email: BOOTSTRAP_ADMIN_EMAIL }, 'created the first admin account');
    return { email: BOOTSTRAP_ADMIN_EMAIL, password };
  }

  /** Creates a user with a role in one project; `password` is required to sign in locally. */
  async createUser(input: {
    email: string;
    name: string;
    password?: string;
    role: Role;
    projectId: string;
  }): Promise<User> {
    const data = parseInput(createUserSchema, input, 'user');
    await requireProject(this.repo, data.projectId);
    if (await this.repo.userByEmail(data.email)) {
      throw new PlatformError(
        'conflict',
        `user "${data.email}" already exists; use setRole to give them a role in project "${data.projectId}"`,
      );
    }
    const user: User = {
      id: newId('usr'),
      email: data.email,
      name: data.name,
      provider: this.identity.kind,
      disabled: false,
      createdAt: this.now(),
    };
    const passwordHash = data.password === undefined ? null : await hashPassword(data.password);
    try {
      await this.db.transaction(async (trx) => {
        const repo = this.repo.in(trx);
        await repo.insertUser({
          id: user.id,
          email: user.email,
          name: user.name,
          password_hash: passwordHash,
          provider: user.provider,
          disabled: 0,
          created_at: user.createdAt,
        });
        await repo.insertMembership(data.projectId, user.id, data.role, user.createdAt);
      });
    } catch (err) {
      if (isUniqueViolation(err))
        throw new PlatformError(
          'conflict',
          `user "${data.email}" already exists; use setRole to change their role`,
        );
      throw err;
    }
    this.events?.emit({
      type: 'accounts.user_created',
      projectId: data.projectId,
      at: user.createdAt,
      userId: user.id,
      email: user.email,
      role: data.role,
    });
    return user;
  }

  /** Replaces a local user's password (at least 8 characters); their open sessions end. */
  async setPassword(userId: string, password: string): Promise<void> {
    const pw = parseInput(passwordSchema, password, 'password');
    await requireUser(this.repo, userId);
    const hash = await hashPassword(pw);
    await this.db.transaction(async (trx) => {
      const repo = this.repo.in(trx);
      await repo.setPasswordHash(userId, hash);
      await repo.deleteSessionsOf(userId);
    });
  }

  /** Sets a user's role in a project (adding the membership if needed); the last admin of a project cannot be demoted. */
  async setRole(projectId: string, userId: string, role: Role): Promise<void> {
    const r = parseInput(roleSchema, role, 'role');
    await requireProject(this.repo, projectId);
    await requireUser(this.repo, userId);
    const previous = await this.db.transaction(async (trx) => {
      const repo = this.repo.in(trx);
      const prev = await repo.role(projectId, userId);
      if (prev === r) return prev;
      if (prev === 'admin' && (await repo.countAdmins(projectId)) <= 1) {
        throw new PlatformError(
          'conflict',
          `cannot demote the last admin of project "${projectId}"; make someone else admin first`,
        );
      }
      if (prev === undefined) await repo.insertMembership(projectId, userId, r, this.now());
      else await repo.updateMembership(projectId, userId, r);
      return prev;
    });
    if (previous !== r) {
      this.events?.emit({
        type: 'accounts.role_changed',
        projectId,
        at: this.now(),
        userId,
        role: r,
        ...(previous ? { previous } : {}),
      });
    }
  }

  /** The user's role in a project, or undefined when they are not a member. */
  async roleOf(projectId: string, userId: string): Promise<Role | undefined> {
    return this.repo.role(projectId, userId);
  }

  /** Members of a project, ordered by email. */
  async listMembers(projectId: string): Promise<Member[]> {
    await requireProject(this.repo, projectId);
    return this.repo.members(projectId);
  }

  /** Looks a user up by id. */
  async getUser(userId: string): Promise<User | undefined> {
    return this.repo.user(userId);
  }

  /** Local sign-in: checks the password and opens a session; the token is returned only here. */
  login(email: string, password: string): Promise<LoginResult> {
    return this.signIn.login(email, password);
  }

  /**
   * Firebase sign-in: verifies the ID token (revoked and disabled users refused), finds the account bound
   * to the Firebase uid, or binds one on the first sign-in with a verified e-mail (the account of that
   * e-mail if it has no uid yet, else a new one), applies role claims, and opens a session.
   */
  loginWithIdToken(idToken: string): Promise<LoginResult> {
    return this.signIn.loginWithIdToken(idToken);
  }

  /** Resolves a session token to the principal acting in `projectId`; slides the session's expiry. */
  authenticateSession(token: string, projectId: string): Promise<Principal> {
    return this.signIn.authenticateSession(token, projectId);
  }

  /** Ends a session; unknown tokens are ignored. */
  logout(token: string): Promise<void> {
    return this.signIn.logout(token);
  }

  /** Creates an API token for machines and MCP clients, with a role no higher than its creator's; the token is returned only here. */
  createApiToken(input: ApiTokenInput): Promise<{ id: string; token: string; expiresAt: number | null }> {
    return this.tokens.create(input);
  }

  /** Resolves an API token to its principal (kind `token`); its role never exceeds its owner's current role. */
  authenticateToken(token: string, projectId?: string): Promise<TokenPrincipal> {
    return this.tokens.authenticate(token, projectId);
  }

  /**
   * Revokes an API token on behalf of `by`: the token's owner, or an admin acting in the token's own
   * project (`system` for the CLI); revoking twice keeps the first time. A token the caller may not
   * revoke is reported exactly like a missing one.
   */
  revokeApiToken(
    id: string,
    by: { userId: string; projectId: string; role: Role } | 'system',
  ): Promise<void> {
    return this.tokens.revoke(id, by);
  }

  /** A user's API tokens, newest first, without secrets. */
  listApiTokens(userId: string): Promise<ApiTokenInfo[]> {
    return this.tokens.list(userId);
  }
}
