import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Transaction } from 'kysely';
import { z } from 'zod';
import { ROLES, roleAtLeast, type Principal, type Role } from '../../core/context.js';
import { describeZodError, isPlatformError, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/log.js';
import type { AuditLog } from '../audit/index.js';
import type { Identity, IdentityProvider } from '../infra/auth/port.js';
import { MemoryCache } from '../infra/cache/memory.js';
import type { Cache } from '../infra/cache/port.js';
import { hashPassword } from '../infra/auth/password.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { AccountEvent } from './events.js';

/** The project every installation starts with. */
export const DEFAULT_PROJECT_ID = 'default';
/** The account `bootstrapAdmin` creates on first start. */
export const BOOTSTRAP_ADMIN_EMAIL = 'admin@visioninapp.local';

/** A project: datasets, models, jobs, devices and roles belong to one. */
export interface Project {
  id: string;
  name: string;
  createdAt: number;
}

/** A user account (never carries the password hash). */
export interface User {
  id: string;
  email: string;
  name: string;
  provider: 'local' | 'firebase';
  disabled: boolean;
  createdAt: number;
}

/** A user's membership in a project. */
export interface Member {
  userId: string;
  email: string;
  name: string;
  role: Role;
  since: number;
}

/** What a successful login hands the front end; the session token is shown only here. */
export interface LoginResult {
  sessionToken: string;
  expiresAt: number;
  user: User;
}

/** An API token as listed (never its secret or hash). */
export interface ApiTokenInfo {
  id: string;
  name: string;
  userId: string;
  projectId: string;
  role: Role;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/** A principal authenticated by an API token, with the project and token it came from. */
export interface TokenPrincipal extends Principal {
  kind: 'token';
  scopes: string[];
  projectId: string;
  tokenId: string;
}

/**
 * Per-account sign-in lockout: after `maxFailures` wrong passwords for one email within `windowMs`,
 * sign-in for that email is refused for `lockMs`, doubling with each further failure up to `maxLockMs`.
 */
export interface LoginLockout {
  maxFailures: number;
  windowMs: number;
  lockMs: number;
  maxLockMs: number;
}

/** Defaults: 5 failures in 15 minutes lock the account for 1 minute, then 2, 4, … up to 1 hour. */
export const DEFAULT_LOGIN_LOCKOUT: LoginLockout = {
  maxFailures: 5,
  windowMs: 15 * 60_000,
  lockMs: 60_000,
  maxLockMs: 3_600_000,
};

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
const emailSchema = z.string().trim().toLowerCase().pipe(z.email('a valid email address'));
const passwordSchema = z.string().min(8, 'at least 8 characters').max(1024);
const createUserSchema = z.object({
  email: emailSchema,
  name: z.string().trim().min(1, 'a name').max(200),
  password: passwordSchema.optional(),
  role: roleSchema,
  projectId: z.string().min(1),
});
const createTokenSchema = z.object({
  userId: z.string().min(1),
  projectId: z.string().min(1),
  name: z.string().trim().min(1, 'a name').max(200),
  role: roleSchema,
  scopes: z
    .array(z.string().regex(/^[a-z*][a-z0-9_.:*-]*$/, 'scopes like "datasets:read", "mcp" or "*"'))
    .min(1, 'at least one scope'),
  expiresInDays: z.number().positive().max(3650).optional(),
});
const TOKEN_PATTERN = /^via_([a-z]+_[a-z0-9]+)_([0-9a-f]{64})$/;
// Sliding expiry is written back at most this often, so every request does not cost a write.
const SESSION_TOUCH_MS = 60_000;

function parse<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success)
    throw new PlatformError('invalid_input', `invalid ${what}: ${describeZodError(result.error)}`);
  return result.data;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return (
    code === 'ER_DUP_ENTRY' ||
    code.startsWith('SQLITE_CONSTRAINT_UNIQUE') ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}

type UserRow = Database['users'];

function toUser(row: Pick<UserRow, 'id' | 'email' | 'name' | 'provider' | 'disabled' | 'created_at'>): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    provider: row.provider,
    disabled: Number(row.disabled) !== 0,
    createdAt: Number(row.created_at),
  };
}

function optionalTime(v: number | null): number | null {
  return v === null ? null : Number(v);
}

/** Projects, users, per-project roles, sessions and API tokens, on the Db port and the identity port. */
export class AccountService {
  private readonly db: Db;
  private readonly identity: IdentityProvider;
  private readonly log: Logger;
  private readonly events: EventSink<AccountEvent> | undefined;
  private readonly now: () => number;
  private readonly sessionTtlMs: number;
  private readonly cache: Cache;
  private readonly audit: Pick<AuditLog, 'append'> | undefined;
  private readonly lockout: LoginLockout;

  constructor(opts: AccountServiceOptions) {
    this.db = opts.db;
    this.identity = opts.identity;
    this.log = opts.log;
    this.events = opts.events;
    this.now = opts.now ?? Date.now;
    this.sessionTtlMs = opts.sessionTtlMs ?? 7 * 24 * 3600_000;
    this.cache = opts.cache ?? new MemoryCache();
    this.audit = opts.audit;
    this.lockout = opts.lockout ?? DEFAULT_LOGIN_LOCKOUT;
  }

  /** Creates the `default` project when missing; safe to call from several instances at once. */
  async ensureDefaultProject(): Promise<Project> {
    const existing = await this.getProject(DEFAULT_PROJECT_ID);
    if (existing) return existing;
    const createdAt = this.now();
    try {
      await this.db.kysely
        .insertInto('projects')
        .values({ id: DEFAULT_PROJECT_ID, name: DEFAULT_PROJECT_ID, description: '', created_at: createdAt })
        .execute();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
    return (await this.getProject(DEFAULT_PROJECT_ID))!;
  }

  /**
   * On first start (no admin anywhere) creates `admin@visioninapp.local` with a random password and
   * returns the credentials once, for the caller to print; returns undefined when an admin exists or
   * in Firebase mode (roles then come from custom claims).
   */
  async bootstrapAdmin(): Promise<{ email: string; password: string } | undefined> {
    if (this.identity.kind !== 'local') return undefined;
    await this.ensureDefaultProject();
    const admin = await this.db.kysely
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .select('users.id')
      .where('memberships.role', '=', 'admin')
      .where('users.disabled', '=', 0)
      .executeTakeFirst();
    if (admin) return undefined;
    const password = randomBytes(18).toString('base64url');
    const existing = await this.findUserByEmail(BOOTSTRAP_ADMIN_EMAIL);
    if (existing) {
      await this.setPassword(existing.id, password);
      await this.setRole(DEFAULT_PROJECT_ID, existing.id, 'admin');
      await this.db.kysely.updateTable('users').set({ disabled: 0 }).where('id', '=', existing.id).execute();
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
    const data = parse(createUserSchema, input, 'user');
    await this.requireProject(data.projectId);
    if (await this.findUserByEmail(data.email)) {
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
        await trx
          .insertInto('users')
          .values({
            id: user.id,
            email: user.email,
            name: user.name,
            password_hash: passwordHash,
            provider: user.provider,
            disabled: 0,
            created_at: user.createdAt,
          })
          .execute();
        await trx
          .insertInto('memberships')
          .values({
            project_id: data.projectId,
            user_id: user.id,
            role: data.role,
            created_at: user.createdAt,
          })
          .execute();
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
    const pw = parse(passwordSchema, password, 'password');
    await this.requireUser(userId);
    const hash = await hashPassword(pw);
    await this.db.transaction(async (trx) => {
      await trx.updateTable('users').set({ password_hash: hash }).where('id', '=', userId).execute();
      await trx.deleteFrom('sessions').where('user_id', '=', userId).execute();
    });
  }

  /** Sets a user's role in a project (adding the membership if needed); the last admin of a project cannot be demoted. */
  async setRole(projectId: string, userId: string, role: Role): Promise<void> {
    const r = parse(roleSchema, role, 'role');
    await this.requireProject(projectId);
    await this.requireUser(userId);
    const previous = await this.db.transaction(async (trx) => {
      const prev = await this.roleIn(trx, projectId, userId);
      if (prev === r) return prev;
      if (prev === 'admin') {
        const admins = await trx
          .selectFrom('memberships')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('project_id', '=', projectId)
          .where('role', '=', 'admin')
          .executeTakeFirstOrThrow();
        if (Number(admins.n) <= 1) {
          throw new PlatformError(
            'conflict',
            `cannot demote the last admin of project "${projectId}"; make someone else admin first`,
          );
        }
      }
      if (prev === undefined) {
        await trx
          .insertInto('memberships')
          .values({ project_id: projectId, user_id: userId, role: r, created_at: this.now() })
          .execute();
      } else {
        await trx
          .updateTable('memberships')
          .set({ role: r })
          .where('project_id', '=', projectId)
          .where('user_id', '=', userId)
          .execute();
      }
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
    return this.roleIn(this.db.kysely, projectId, userId);
  }

  /** Members of a project, ordered by email. */
  async listMembers(projectId: string): Promise<Member[]> {
    await this.requireProject(projectId);
    const rows = await this.db.kysely
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .select(['users.id', 'users.email', 'users.name', 'memberships.role', 'memberships.created_at'])
      .where('memberships.project_id', '=', projectId)
      .orderBy('users.email')
      .execute();
    return rows.map((r) => ({
      userId: r.id,
      email: r.email,
      name: r.name,
      role: r.role,
      since: Number(r.created_at),
    }));
  }

  /** Looks a user up by id. */
  async getUser(userId: string): Promise<User | undefined> {
    const row = await this.db.kysely
      .selectFrom('users')
      .selectAll()
      .where('id', '=', userId)
      .executeTakeFirst();
    return row ? toUser(row) : undefined;
  }

  /** Local sign-in: checks the password and opens a session; the token is returned only here. */
  async login(email: string, password: string): Promise<LoginResult> {
    if (!this.identity.verifyPassword) {
      throw new PlatformError(
        'invalid_input',
        'this server signs people in with Firebase; send a Firebase ID token instead of a password',
      );
    }
    // Counted per typed email, existing or not, so the lockout tells nothing about which accounts exist.
    const account = sha256(String(email).trim().toLowerCase());
    const lockedUntil = await this.cache.get<number>(`login:lock:${account}`);
    if (lockedUntil !== undefined && lockedUntil > this.now()) throw this.lockedError(lockedUntil);
    let identity;
    try {
      identity = await this.identity.verifyPassword(email, password);
    } catch (err) {
      this.events?.emit({
        type: 'accounts.login_failed',
        projectId: DEFAULT_PROJECT_ID,
        at: this.now(),
        email: String(email).slice(0, 320),
      });
      if (isPlatformError(err, 'unauthenticated')) await this.countFailure(account, String(email));
      throw err;
    }
    const user = await this.getUser(identity.subject);
    if (!user || user.disabled) throw new PlatformError('unauthenticated', 'wrong email or password');
    await this.cache.delete(`login:fail:${account}`);
    return this.openSession(user, 'password');
  }

  private async countFailure(account: string, email: string): Promise<void> {
    const { maxFailures, windowMs, lockMs, maxLockMs } = this.lockout;
    const failures = await this.cache.incr(`login:fail:${account}`, { ttlMs: windowMs });
    if (failures < maxFailures) return;
    const ms = Math.min(maxLockMs, lockMs * 2 ** Math.min(20, failures - maxFailures));
    const until = this.now() + ms;
    await this.cache.set(`login:lock:${account}`, until, ms);
    this.log.warn({ failures, lockedForMs: ms }, 'sign-in locked for an account after repeated failures');
    await this.audit?.append({
      projectId: DEFAULT_PROJECT_ID,
      actor: { id: 'system', kind: 'system' },
      action: 'accounts.login_locked',
      data: { email: email.slice(0, 320), failures, lockedUntil: until },
    });
  }

  private lockedError(until: number): PlatformError {
    const seconds = Math.max(1, Math.ceil((until - this.now()) / 1000));
    return new PlatformError(
      'rate_limited',
      `too many failed sign-ins for this account; try again after ${new Date(until).toISOString()} (in ${seconds} s), or ask an admin to reset the password`,
      { retryAfterSeconds: seconds, retryAt: until },
    );
  }

  /**
   * Firebase sign-in: verifies the ID token (revoked and disabled users refused), finds the account bound
   * to the Firebase uid, or binds one on the first sign-in with a verified e-mail (the account of that
   * e-mail if it has no uid yet, else a new one), applies role claims, and opens a session.
   */
  async loginWithIdToken(idToken: string): Promise<LoginResult> {
    if (!this.identity.verifyIdToken) {
      throw new PlatformError(
        'invalid_input',
        'this server uses local accounts; sign in with email and password',
      );
    }
    const identity = await this.identity.verifyIdToken(idToken);
    let user = await this.findUserByFirebaseUid(identity.subject);
    if (user === undefined) user = await this.bindFirebaseUid(identity);
    if (user.disabled)
      throw new PlatformError(
        'unauthenticated',
        `account "${user.email}" is disabled; ask an admin to enable it`,
      );
    if (user.name !== identity.name) {
      await this.db.kysely
        .updateTable('users')
        .set({ name: identity.name })
        .where('id', '=', user.id)
        .execute();
      user = { ...user, name: identity.name };
    }
    // Claims are authoritative for the projects they name; other memberships stay as set in the platform.
    for (const [projectId, role] of Object.entries(identity.roles ?? {})) {
      if (!(await this.getProject(projectId))) {
        this.log.warn(
          { projectId, userId: user.id },
          'Firebase role claim names an unknown project; ignored',
        );
        continue;
      }
      if ((await this.roleOf(projectId, user.id)) !== role) await this.forceRole(projectId, user.id, role);
    }
    return this.openSession(user, 'firebase');
  }

  /** Resolves a session token to the principal acting in `projectId`; slides the session's expiry. */
  async authenticateSession(token: string, projectId: string): Promise<Principal> {
    const unknown = () => new PlatformError('unauthenticated', 'session expired or unknown; sign in again');
    if (typeof token !== 'string' || token.length < 20 || token.length > 200) throw unknown();
    const idHash = sha256(token);
    const session = await this.db.kysely
      .selectFrom('sessions')
      .selectAll()
      .where('id_hash', '=', idHash)
      .executeTakeFirst();
    const now = this.now();
    if (!session) throw unknown();
    if (Number(session.expires_at) <= now) {
      await this.db.kysely.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
      throw unknown();
    }
    const user = await this.getUser(session.user_id);
    if (!user || user.disabled) throw unknown();
    const touch = now - Number(session.last_seen_at) >= SESSION_TOUCH_MS;
    if (touch) await this.recheckIdentity(user, Number(session.created_at), idHash);
    const role = await this.requireRole(projectId, user);
    if (touch) {
      await this.db.kysely
        .updateTable('sessions')
        .set({ last_seen_at: now, expires_at: now + this.sessionTtlMs })
        .where('id_hash', '=', idHash)
        .execute();
    }
    return { userId: user.id, email: user.email, name: user.name, role, kind: 'user' };
  }

  /** Ends a session; unknown tokens are ignored. */
  async logout(token: string): Promise<void> {
    if (typeof token !== 'string' || token === '') return;
    const ended = await this.db.kysely
      .selectFrom('sessions')
      .select('user_id')
      .where('id_hash', '=', sha256(token))
      .executeTakeFirst();
    await this.db.kysely.deleteFrom('sessions').where('id_hash', '=', sha256(token)).execute();
    if (ended !== undefined)
      this.events?.emit({
        type: 'accounts.logout',
        projectId: DEFAULT_PROJECT_ID,
        at: this.now(),
        userId: ended.user_id,
      });
  }

  /** Creates an API token for machines and MCP clients, with a role no higher than its creator's; the token is returned only here. */
  async createApiToken(input: {
    userId: string;
    projectId: string;
    name: string;
    role: Role;
    scopes: string[];
    expiresInDays?: number;
  }): Promise<{ id: string; token: string; expiresAt: number | null }> {
    const data = parse(createTokenSchema, input, 'API token');
    const user = await this.requireUser(data.userId);
    const creatorRole = await this.requireRole(data.projectId, user);
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
    await this.db.kysely
      .insertInto('api_tokens')
      .values({
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
      })
      .execute();
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
      const row = await this.db.kysely
        .selectFrom('devices')
        .select('project_id')
        .where('id', '=', deviceId)
        .executeTakeFirst();
      // a device of another project is reported exactly like a missing one
      if (row === undefined || row.project_id !== projectId) {
        throw new PlatformError(
          'not_found',
          `device "${deviceId}" is not registered in project "${projectId}"; start it so it sends a heartbeat, then create its token (see GET /api/devices)`,
        );
      }
    }
  }

  /** Resolves an API token to its principal (kind `token`); its role never exceeds its owner's current role. */
  async authenticateToken(token: string, projectId?: string): Promise<TokenPrincipal> {
    const match = typeof token === 'string' ? TOKEN_PATTERN.exec(token) : null;
    if (!match)
      throw new PlatformError(
        'unauthenticated',
        'malformed API token; expected "via_<id>_<secret>" as issued by createApiToken',
      );
    const [, id, secret] = match as unknown as [string, string, string];
    const row = await this.db.kysely
      .selectFrom('api_tokens')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
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
    const user = await this.getUser(row.user_id);
    if (!user || user.disabled)
      throw new PlatformError(
        'unauthenticated',
        `the owner of API token ${id} is disabled or gone; the token no longer works`,
      );
    const ownerRole = await this.requireRole(row.project_id, user);
    const role = roleAtLeast(ownerRole, row.role) ? row.role : ownerRole;
    // once a minute is precise enough for "last used", and spares a write on every request
    if (row.last_used_at === null || now - Number(row.last_used_at) >= 60_000) {
      await this.db.kysely
        .updateTable('api_tokens')
        .set({ last_used_at: now })
        .where('id', '=', id)
        .execute();
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

  /**
   * Revokes an API token on behalf of `by`: the token's owner, or an admin acting in the token's own
   * project (`system` for the CLI); revoking twice keeps the first time. A token the caller may not
   * revoke is reported exactly like a missing one.
   */
  async revokeApiToken(
    id: string,
    by: { userId: string; projectId: string; role: Role } | 'system',
  ): Promise<void> {
    const row = await this.db.kysely
      .selectFrom('api_tokens')
      .select(['id', 'user_id', 'project_id', 'revoked_at'])
      .where('id', '=', id)
      .executeTakeFirst();
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
    await this.db.kysely
      .updateTable('api_tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    this.events?.emit({
      type: 'accounts.token_revoked',
      projectId: row.project_id,
      at,
      tokenId: id,
      userId: row.user_id,
    });
  }

  /** A user's API tokens, newest first, without secrets. */
  async listApiTokens(userId: string): Promise<ApiTokenInfo[]> {
    const rows = await this.db.kysely
      .selectFrom('api_tokens')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      userId: r.user_id,
      projectId: r.project_id,
      role: r.role,
      scopes: JSON.parse(r.scopes) as string[],
      createdAt: Number(r.created_at),
      expiresAt: optionalTime(r.expires_at),
      revokedAt: optionalTime(r.revoked_at),
      lastUsedAt: optionalTime(r.last_used_at),
    }));
  }

  private async openSession(user: User, method: 'password' | 'firebase'): Promise<LoginResult> {
    const sessionToken = randomBytes(32).toString('base64url');
    const now = this.now();
    const expiresAt = now + this.sessionTtlMs;
    await this.db.kysely
      .insertInto('sessions')
      .values({
        id_hash: sha256(sessionToken),
        user_id: user.id,
        created_at: now,
        expires_at: expiresAt,
        last_seen_at: now,
      })
      .execute();
    await this.db.kysely
      .deleteFrom('sessions')
      .where('user_id', '=', user.id)
      .where('expires_at', '<=', now)
      .execute();
    this.events?.emit({
      type: 'accounts.login',
      projectId: DEFAULT_PROJECT_ID,
      at: now,
      userId: user.id,
      email: user.email,
      method,
    });
    return { sessionToken, expiresAt, user };
  }

  private async forceRole(projectId: string, userId: string, role: Role): Promise<void> {
    const previous = await this.roleOf(projectId, userId);
    if (previous === undefined) {
      try {
        await this.db.kysely
          .insertInto('memberships')
          .values({ project_id: projectId, user_id: userId, role, created_at: this.now() })
          .execute();
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        await this.db.kysely
          .updateTable('memberships')
          .set({ role })
          .where('project_id', '=', projectId)
          .where('user_id', '=', userId)
          .execute();
      }
    } else {
      await this.db.kysely
        .updateTable('memberships')
        .set({ role })
        .where('project_id', '=', projectId)
        .where('user_id', '=', userId)
        .execute();
    }
    this.events?.emit({
      type: 'accounts.role_changed',
      projectId,
      at: this.now(),
      userId,
      role,
      ...(previous ? { previous } : {}),
    });
  }

  private async roleIn(
    q: Db['kysely'] | Transaction<Database>,
    projectId: string,
    userId: string,
  ): Promise<Role | undefined> {
    const row = await q
      .selectFrom('memberships')
      .select('role')
      .where('project_id', '=', projectId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row?.role;
  }

  // An unknown project and one the user is not in get the same answer, naming only the user's own projects,
  // so a signed-in user can neither list the installation's projects nor probe which ids exist.
  private async requireRole(projectId: string, user: User): Promise<Role> {
    const role = await this.roleOf(projectId, user.id);
    if (role) return role;
    throw new PlatformError(
      'forbidden',
      `${user.email} has no role in project "${projectId}"; your projects: ${(await this.projectsOf(user.id)).join(', ') || '(none)'}. Ask an admin of the project to add you`,
    );
  }

  private async projectsOf(userId: string): Promise<string[]> {
    const rows = await this.db.kysely
      .selectFrom('memberships')
      .select('project_id')
      .where('user_id', '=', userId)
      .orderBy('project_id')
      .limit(20)
      .execute();
    return rows.map((r) => r.project_id);
  }

  private async getProject(id: string): Promise<Project | undefined> {
    const row = await this.db.kysely
      .selectFrom('projects')
      .select(['id', 'name', 'created_at'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? { id: row.id, name: row.name, createdAt: Number(row.created_at) } : undefined;
  }

  private async requireProject(id: string): Promise<Project> {
    const project = await this.getProject(id);
    if (project) return project;
    const known = await this.db.kysely.selectFrom('projects').select('id').orderBy('id').limit(20).execute();
    throw new PlatformError(
      'not_found',
      `project "${id}" not found; known projects: ${known.map((p) => p.id).join(', ') || '(none)'}`,
    );
  }

  private async requireUser(id: string): Promise<User> {
    const user = await this.getUser(id);
    if (!user) throw new PlatformError('not_found', `user "${id}" not found; list members with listMembers`);
    return user;
  }

  private async findUserByFirebaseUid(uid: string): Promise<User | undefined> {
    const row = await this.db.kysely
      .selectFrom('users')
      .selectAll()
      .where('firebase_uid', '=', uid)
      .executeTakeFirst();
    return row ? toUser(row) : undefined;
  }

  // The first sign-in of a Firebase uid: only a verified e-mail claims an account, and only one no other uid holds,
  // so a second Firebase user with the same (unverified) address never gets the first one's account and roles.
  private async bindFirebaseUid(identity: Identity): Promise<User> {
    const taken = () =>
      new PlatformError(
        'unauthenticated',
        `the account of ${identity.email} is bound to another Firebase sign-in; sign in with that one, or ask an admin`,
      );
    if (identity.emailVerified !== true) {
      throw new PlatformError(
        'unauthenticated',
        `the e-mail address ${identity.email} of this Firebase account is not verified; verify it (see your inbox) and sign in again`,
      );
    }
    const existing = await this.db.kysely
      .selectFrom('users')
      .selectAll()
      .where('email', '=', identity.email)
      .executeTakeFirst();
    if (existing !== undefined) {
      if (existing.firebase_uid !== null) throw taken();
      const bound = await this.db.kysely
        .updateTable('users')
        .set({ firebase_uid: identity.subject })
        .where('id', '=', existing.id)
        .where('firebase_uid', 'is', null)
        .executeTakeFirst();
      if (Number(bound.numUpdatedRows) !== 1) {
        const raced = await this.findUserByFirebaseUid(identity.subject);
        if (raced === undefined) throw taken();
        return raced;
      }
      this.log.info(
        { userId: existing.id },
        'Firebase uid bound to an existing account at its first verified sign-in',
      );
      return toUser(existing);
    }
    const created: User = {
      id: newId('usr'),
      email: identity.email,
      name: identity.name,
      provider: 'firebase',
      disabled: false,
      createdAt: this.now(),
    };
    try {
      await this.db.kysely
        .insertInto('users')
        .values({
          id: created.id,
          email: created.email,
          name: created.name,
          password_hash: null,
          provider: 'firebase',
          firebase_uid: identity.subject,
          disabled: 0,
          created_at: created.createdAt,
        })
        .execute();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // the same person signing in twice at once: the other request bound the uid first
      const raced = await this.findUserByFirebaseUid(identity.subject);
      if (raced === undefined) throw taken();
      return raced;
    }
    this.events?.emit({
      type: 'accounts.user_created',
      projectId: DEFAULT_PROJECT_ID,
      at: created.createdAt,
      userId: created.id,
      email: created.email,
      role: 'viewer',
    });
    return created;
  }

  // A platform session of a Firebase user ends once Firebase disables the user or revokes their tokens.
  private async recheckIdentity(user: User, sessionStartedAt: number, idHash: string): Promise<void> {
    if (user.provider !== 'firebase' || this.identity.checkSubject === undefined) return;
    const row = await this.db.kysely
      .selectFrom('users')
      .select('firebase_uid')
      .where('id', '=', user.id)
      .executeTakeFirst();
    if (row?.firebase_uid == null) return;
    try {
      await this.identity.checkSubject(row.firebase_uid, sessionStartedAt);
    } catch (err) {
      if (isPlatformError(err, 'unauthenticated')) {
        await this.db.kysely.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
        this.events?.emit({
          type: 'accounts.logout',
          projectId: DEFAULT_PROJECT_ID,
          at: this.now(),
          userId: user.id,
        });
      }
      throw err;
    }
  }

  private async findUserByEmail(email: string): Promise<User | undefined> {
    const row = await this.db.kysely
      .selectFrom('users')
      .selectAll()
      .where('email', '=', email.trim().toLowerCase())
      .executeTakeFirst();
    return row ? toUser(row) : undefined;
  }
}
