import { randomBytes } from 'node:crypto';
import type { Principal, Role } from '../../core/context.js';
import { isPlatformError, PlatformError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/log.js';
import type { AuditLog } from '../audit/index.js';
import type { Identity, IdentityProvider } from '../infra/auth/port.js';
import type { Cache } from '../infra/cache/port.js';
import { isUniqueViolation } from '../infra/db/errors.js';
import { requireMemberRole, sha256 } from './account.access.js';
import { toUser, type AccountRepository } from './account.repository.js';
import type { AccountEvent } from './events.js';
import { DEFAULT_PROJECT_ID, type LoginLockout, type LoginResult, type User } from './model.js';

// Sliding expiry is written back at most this often, so every request does not cost a write.
const SESSION_TOUCH_MS = 60_000;

/** What SignIn needs from AccountService. */
export interface SignInDeps {
  repo: AccountRepository;
  identity: IdentityProvider;
  log: Logger;
  events: EventSink<AccountEvent> | undefined;
  now: () => number;
  sessionTtlMs: number;
  cache: Cache;
  audit: Pick<AuditLog, 'append'> | undefined;
  lockout: LoginLockout;
}

/** Sessions: password and Firebase sign-in (with lockout and uid binding), resolving and ending a session; AccountService delegates here. */
export class SignIn {
  constructor(private readonly d: SignInDeps) {}

  /** See AccountService.login. */
  async login(email: string, password: string): Promise<LoginResult> {
    const { identity: idp, cache, events, now } = this.d;
    if (!idp.verifyPassword) {
      throw new PlatformError(
        'invalid_input',
        'this server signs people in with Firebase; send a Firebase ID token instead of a password',
      );
    }
    // Counted per typed email, existing or not, so the lockout tells nothing about which accounts exist.
    const account = sha256(String(email).trim().toLowerCase());
    const lockedUntil = await cache.get<number>(`login:lock:${account}`);
    if (lockedUntil !== undefined && lockedUntil > now()) throw this.lockedError(lockedUntil);
    let identity;
    try {
      identity = await idp.verifyPassword(email, password);
    } catch (err) {
      events?.emit({
        type: 'accounts.login_failed',
        projectId: DEFAULT_PROJECT_ID,
        at: now(),
        email: String(email).slice(0, 320),
      });
      if (isPlatformError(err, 'unauthenticated')) await this.countFailure(account, String(email));
      throw err;
    }
    const user = await this.d.repo.user(identity.subject);
    if (!user || user.disabled) throw new PlatformError('unauthenticated', 'wrong email or password');
    await cache.delete(`login:fail:${account}`);
    return this.openSession(user, 'password');
  }

  private async countFailure(account: string, email: string): Promise<void> {
    const { maxFailures, windowMs, lockMs, maxLockMs } = this.d.lockout;
    const failures = await this.d.cache.incr(`login:fail:${account}`, { ttlMs: windowMs });
    if (failures < maxFailures) return;
    const ms = Math.min(maxLockMs, lockMs * 2 ** Math.min(20, failures - maxFailures));
    const until = this.d.now() + ms;
    await this.d.cache.set(`login:lock:${account}`, until, ms);
    this.d.log.warn({ failures, lockedForMs: ms }, 'sign-in locked for an account after repeated failures');
    await this.d.audit?.append({
      projectId: DEFAULT_PROJECT_ID,
      actor: { id: 'system', kind: 'system' },
      action: 'accounts.login_locked',
      data: { email: email.slice(0, 320), failures, lockedUntil: until },
    });
  }

  private lockedError(until: number): PlatformError {
    const seconds = Math.max(1, Math.ceil((until - this.d.now()) / 1000));
    return new PlatformError(
      'rate_limited',
      `too many failed sign-ins for this account; try again after ${new Date(until).toISOString()} (in ${seconds} s), or ask an admin to reset the password`,
      { retryAfterSeconds: seconds, retryAt: until },
    );
  }

  /** See AccountService.loginWithIdToken. */
  async loginWithIdToken(idToken: string): Promise<LoginResult> {
    const { identity: idp, repo } = this.d;
    if (!idp.verifyIdToken) {
      throw new PlatformError(
        'invalid_input',
        'this server uses local accounts; sign in with email and password',
      );
    }
    const identity = await idp.verifyIdToken(idToken);
    let user = await repo.userByFirebaseUid(identity.subject);
    if (user === undefined) user = await this.bindFirebaseUid(identity);
    if (user.disabled)
      throw new PlatformError(
        'unauthenticated',
        `account "${user.email}" is disabled; ask an admin to enable it`,
      );
    if (user.name !== identity.name) {
      await repo.renameUser(user.id, identity.name);
      user = { ...user, name: identity.name };
    }
    // Claims are authoritative for the projects they name; other memberships stay as set in the platform.
    for (const [projectId, role] of Object.entries(identity.roles ?? {})) {
      if (!(await repo.project(projectId))) {
        this.d.log.warn(
          { projectId, userId: user.id },
          'Firebase role claim names an unknown project; ignored',
        );
        continue;
      }
      if ((await repo.role(projectId, user.id)) !== role) await this.forceRole(projectId, user.id, role);
    }
    return this.openSession(user, 'firebase');
  }

  /** See AccountService.authenticateSession. */
  async authenticateSession(token: string, projectId: string): Promise<Principal> {
    const { repo } = this.d;
    const unknown = () => new PlatformError('unauthenticated', 'session expired or unknown; sign in again');
    if (typeof token !== 'string' || token.length < 20 || token.length > 200) throw unknown();
    const idHash = sha256(token);
    const session = await repo.session(idHash);
    const now = this.d.now();
    if (!session) throw unknown();
    if (Number(session.expires_at) <= now) {
      await repo.deleteSession(idHash);
      throw unknown();
    }
    const user = await repo.user(session.user_id);
    if (!user || user.disabled) throw unknown();
    const touch = now - Number(session.last_seen_at) >= SESSION_TOUCH_MS;
    if (touch) await this.recheckIdentity(user, Number(session.created_at), idHash);
    const role = await requireMemberRole(repo, projectId, user);
    if (touch) await repo.touchSession(idHash, now, now + this.d.sessionTtlMs);
    return { userId: user.id, email: user.email, name: user.name, role, kind: 'user' };
  }

  /** See AccountService.logout. */
  async logout(token: string): Promise<void> {
    if (typeof token !== 'string' || token === '') return;
    const idHash = sha256(token);
    const ended = await this.d.repo.session(idHash);
    await this.d.repo.deleteSession(idHash);
    if (ended !== undefined) this.emitLogout(ended.user_id);
  }

  private emitLogout(userId: string): void {
    this.d.events?.emit({ type: 'accounts.logout', projectId: DEFAULT_PROJECT_ID, at: this.d.now(), userId });
  }

  private async openSession(user: User, method: 'password' | 'firebase'): Promise<LoginResult> {
    const sessionToken = randomBytes(32).toString('base64url');
    const now = this.d.now();
    const expiresAt = now + this.d.sessionTtlMs;
    await this.d.repo.insertSession({
      id_hash: sha256(sessionToken),
      user_id: user.id,
      created_at: now,
      expires_at: expiresAt,
      last_seen_at: now,
    });
    await this.d.repo.deleteExpiredSessions(user.id, now);
    this.d.events?.emit({
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
    const { repo } = this.d;
    const previous = await repo.role(projectId, userId);
    if (previous === undefined) {
      try {
        await repo.insertMembership(projectId, userId, role, this.d.now());
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        await repo.updateMembership(projectId, userId, role);
      }
    } else {
      await repo.updateMembership(projectId, userId, role);
    }
    this.d.events?.emit({
      type: 'accounts.role_changed',
      projectId,
      at: this.d.now(),
      userId,
      role,
      ...(previous ? { previous } : {}),
    });
  }

  // The first sign-in of a Firebase uid: only a verified e-mail claims an account, and only one no other uid holds,
  // so a second Firebase user with the same (unverified) address never gets the first one's account and roles.
  private async bindFirebaseUid(identity: Identity): Promise<User> {
    const { repo } = this.d;
    const taken = () =>
      new PlatformError(
        'unauthenticated',
        `the account of ${identity.email} is bound to another Firebase sign-in; sign in with that one, or ask an admin`,
      );
    const raced = async () => {
      const user = await repo.userByFirebaseUid(identity.subject);
      if (user === undefined) throw taken();
      return user;
    };
    if (identity.emailVerified !== true) {
      throw new PlatformError(
        'unauthenticated',
        `the e-mail address ${identity.email} of this Firebase account is not verified; verify it (see your inbox) and sign in again`,
      );
    }
    const existing = await repo.userRowByEmail(identity.email);
    if (existing !== undefined) {
      if (existing.firebase_uid !== null) throw taken();
      if (!(await repo.bindFirebaseUid(existing.id, identity.subject))) return raced();
      this.d.log.info(
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
      createdAt: this.d.now(),
    };
    try {
      await repo.insertUser({
        id: created.id,
        email: created.email,
        name: created.name,
        password_hash: null,
        provider: 'firebase',
        firebase_uid: identity.subject,
        disabled: 0,
        created_at: created.createdAt,
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // the same person signing in twice at once: the other request bound the uid first
      return raced();
    }
    this.d.events?.emit({
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
    if (user.provider !== 'firebase' || this.d.identity.checkSubject === undefined) return;
    const uid = await this.d.repo.firebaseUidOf(user.id);
    if (uid == null) return;
    try {
      await this.d.identity.checkSubject(uid, sessionStartedAt);
    } catch (err) {
      if (isPlatformError(err, 'unauthenticated')) {
        await this.d.repo.deleteSession(idHash);
        this.emitLogout(user.id);
      }
      throw err;
    }
  }
}
