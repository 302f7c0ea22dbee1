import type { Insertable, Selectable } from 'kysely';
import type { Role } from '../../core/context.js';
import type { DbExecutor } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { ApiTokenInfo, Member, Project, User } from './model.js';

/** A user row (with the password hash and Firebase uid, which never leave the domain). */
export type UserRow = Selectable<Database['users']>;
/** A session row, keyed by the sha256 of its token. */
export type SessionRow = Selectable<Database['sessions']>;
/** An API token row, with the sha256 of its secret. */
export type TokenRow = Selectable<Database['api_tokens']>;

/** A user as the domain shows it (never the password hash or Firebase uid). */
export function toUser(
  row: Pick<UserRow, 'id' | 'email' | 'name' | 'provider' | 'disabled' | 'created_at'>,
): User {
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

/** The accounts domain's SQL (projects, users, memberships, sessions, API tokens), on a database or an open transaction. */
export class AccountRepository {
  constructor(private readonly db: DbExecutor) {}

  /** The same repository inside a transaction. */
  in(trx: DbExecutor): AccountRepository {
    return new AccountRepository(trx);
  }

  async project(id: string): Promise<Project | undefined> {
    const row = await this.db
      .selectFrom('projects')
      .select(['id', 'name', 'created_at'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? { id: row.id, name: row.name, createdAt: Number(row.created_at) } : undefined;
  }

  async insertProject(p: Project): Promise<void> {
    await this.db
      .insertInto('projects')
      .values({ id: p.id, name: p.name, description: '', created_at: p.createdAt })
      .execute();
  }

  /** Up to 20 project ids, for "known projects" in messages. */
  async projectIds(): Promise<string[]> {
    const rows = await this.db.selectFrom('projects').select('id').orderBy('id').limit(20).execute();
    return rows.map((r) => r.id);
  }

  async user(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toUser(row) : undefined;
  }

  async userByEmail(email: string): Promise<User | undefined> {
    const row = await this.userRowByEmail(email);
    return row ? toUser(row) : undefined;
  }

  userRowByEmail(email: string): Promise<UserRow | undefined> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('email', '=', email.trim().toLowerCase())
      .executeTakeFirst();
  }

  async userByFirebaseUid(uid: string): Promise<User | undefined> {
    const row = await this.db
      .selectFrom('users')
      .selectAll()
      .where('firebase_uid', '=', uid)
      .executeTakeFirst();
    return row ? toUser(row) : undefined;
  }

  async firebaseUidOf(userId: string): Promise<string | null | undefined> {
    const row = await this.db
      .selectFrom('users')
      .select('firebase_uid')
      .where('id', '=', userId)
      .executeTakeFirst();
    return row?.firebase_uid;
  }

  async insertUser(row: Insertable<Database['users']>): Promise<void> {
    await this.db.insertInto('users').values(row).execute();
  }

  async setPasswordHash(userId: string, hash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: hash }).where('id', '=', userId).execute();
  }

  async enableUser(userId: string): Promise<void> {
    await this.db.updateTable('users').set({ disabled: 0 }).where('id', '=', userId).execute();
  }

  async renameUser(userId: string, name: string): Promise<void> {
    await this.db.updateTable('users').set({ name }).where('id', '=', userId).execute();
  }

  /** Binds a Firebase uid to an account that has none yet; false when another request bound one first. */
  async bindFirebaseUid(userId: string, uid: string): Promise<boolean> {
    const bound = await this.db
      .updateTable('users')
      .set({ firebase_uid: uid })
      .where('id', '=', userId)
      .where('firebase_uid', 'is', null)
      .executeTakeFirst();
    return Number(bound.numUpdatedRows) === 1;
  }

  /** Whether any enabled user is an admin of any project. */
  async hasActiveAdmin(): Promise<boolean> {
    const admin = await this.db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .select('users.id')
      .where('memberships.role', '=', 'admin')
      .where('users.disabled', '=', 0)
      .executeTakeFirst();
    return admin !== undefined;
  }

  async role(projectId: string, userId: string): Promise<Role | undefined> {
    const row = await this.db
      .selectFrom('memberships')
      .select('role')
      .where('project_id', '=', projectId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row?.role;
  }

  async countAdmins(projectId: string): Promise<number> {
    const admins = await this.db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('project_id', '=', projectId)
      .where('role', '=', 'admin')
      .executeTakeFirstOrThrow();
    return Number(admins.n);
  }

  async insertMembership(projectId: string, userId: string, role: Role, at: number): Promise<void> {
    await this.db
      .insertInto('memberships')
      .values({ project_id: projectId, user_id: userId, role, created_at: at })
      .execute();
  }

  async updateMembership(projectId: string, userId: string, role: Role): Promise<void> {
    await this.db
      .updateTable('memberships')
      .set({ role })
      .where('project_id', '=', projectId)
      .where('user_id', '=', userId)
      .execute();
  }

  async members(projectId: string): Promise<Member[]> {
    const rows = await this.db
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

  /** Up to 20 ids of the projects a user is a member of. */
  async projectsOf(userId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('memberships')
      .select('project_id')
      .where('user_id', '=', userId)
      .orderBy('project_id')
      .limit(20)
      .execute();
    return rows.map((r) => r.project_id);
  }

  async insertSession(row: SessionRow): Promise<void> {
    await this.db.insertInto('sessions').values(row).execute();
  }

  session(idHash: string): Promise<SessionRow | undefined> {
    return this.db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  async deleteSessionsOf(userId: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  }

  async deleteExpiredSessions(userId: string, now: number): Promise<void> {
    await this.db
      .deleteFrom('sessions')
      .where('user_id', '=', userId)
      .where('expires_at', '<=', now)
      .execute();
  }

  async touchSession(idHash: string, now: number, expiresAt: number): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ last_seen_at: now, expires_at: expiresAt })
      .where('id_hash', '=', idHash)
      .execute();
  }

  async insertToken(row: TokenRow): Promise<void> {
    await this.db.insertInto('api_tokens').values(row).execute();
  }

  token(id: string): Promise<TokenRow | undefined> {
    return this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async touchToken(id: string, now: number): Promise<void> {
    await this.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', id).execute();
  }

  async revokeToken(id: string, at: number): Promise<void> {
    await this.db
      .updateTable('api_tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async tokensOf(userId: string): Promise<ApiTokenInfo[]> {
    const rows = await this.db
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

  /** The project a device is registered in (its row is written by the fleet at its first heartbeat). */
  async deviceProject(deviceId: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('devices')
      .select('project_id')
      .where('id', '=', deviceId)
      .executeTakeFirst();
    return row?.project_id;
  }
}
