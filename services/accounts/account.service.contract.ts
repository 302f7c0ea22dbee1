import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../core/events.js';
import { silentLogger } from '../../core/log.js';
import { FirebaseEmulatorStandIn } from '../infra/auth/firebase-emulator.fixtures.js';
import { FirebaseIdentityProvider } from '../infra/auth/firebase.js';
import { LocalIdentityProvider } from '../infra/auth/local.js';
import type { Db } from '../infra/db/port.js';
import { AccountService, BOOTSTRAP_ADMIN_EMAIL } from './account.service.js';
import type { AccountEvent } from './events.js';

const DAY = 86_400_000;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** AccountService behaviour, run against any Db (SQLite beside the code, MariaDB in the int test). */
export function accountServiceSuite(
  name: string,
  init: () => Promise<{ db: Db; cleanup?: () => Promise<void> }>,
): void {
  describe(`${AccountService.name} (${name}, local accounts)`, () => {
    let db: Db;
    let cleanup: (() => Promise<void>) | undefined;
    let sut: AccountService;
    let clock: number;
    const events: AccountEvent[] = [];

    beforeAll(async () => {
      ({ db, cleanup } = await init());
      await db.migrate();
      const bus = new EventBus<AccountEvent>();
      bus.on((e) => events.push(e));
      clock = Date.UTC(2026, 0, 1);
      sut = new AccountService({
        db,
        identity: new LocalIdentityProvider({ db }),
        log: silentLogger(),
        events: bus,
        now: () => clock,
      });
      await sut.ensureDefaultProject();
      await db.kysely
        .insertInto('projects')
        .values({ id: 'line3', name: 'line3', description: '', created_at: clock })
        .execute();
    });
    afterAll(async () => {
      await db?.close();
      await cleanup?.();
    });
    beforeEach(() => {
      events.length = 0;
    });

    it('creates the default project once', async () => {
      const again = await sut.ensureDefaultProject();
      expect(again).toMatchObject({ id: 'default', name: 'default' });
      expect(
        (await db.kysely.selectFrom('projects').select('id').where('id', '=', 'default').execute()).length,
      ).toBe(1);
    });

    it('bootstraps an admin once, with a password that signs in', async () => {
      const creds = await sut.bootstrapAdmin();
      expect(creds?.email).toBe(BOOTSTRAP_ADMIN_EMAIL);
      expect(creds!.password.length).toBeGreaterThanOrEqual(20);
      expect(await sut.bootstrapAdmin()).toBeUndefined();
      const login = await sut.login(BOOTSTRAP_ADMIN_EMAIL, creds!.password);
      expect(login.user.email).toBe(BOOTSTRAP_ADMIN_EMAIL);
      expect(await sut.roleOf('default', login.user.id)).toBe('admin');
      const row = await db.kysely
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', login.user.id)
        .executeTakeFirstOrThrow();
      expect(row.password_hash).toMatch(/^scrypt\$/);
      expect(row.password_hash).not.toContain(creds!.password);
    });

    it('creates users with a role, lists members, and rejects duplicates and bad input clearly', async () => {
      const bo = await sut.createUser({
        email: ' Bo@Example.com ',
        name: 'Bo',
        password: 'bo-password-1',
        role: 'operator',
        projectId: 'default',
      });
      expect(bo).toMatchObject({ email: 'bo@example.com', name: 'Bo', provider: 'local', disabled: false });
      expect(events.map((e) => e.type)).toContain('accounts.user_created');
      expect(await sut.roleOf('default', bo.id)).toBe('operator');
      expect(await sut.roleOf('line3', bo.id)).toBeUndefined();
      const members = await sut.listMembers('default');
      expect(members.map((m) => [m.email, m.role])).toEqual([
        [BOOTSTRAP_ADMIN_EMAIL, 'admin'],
        ['bo@example.com', 'operator'],
      ]);
      await expect(
        sut.createUser({ email: 'bo@example.com', name: 'Bo2', role: 'viewer', projectId: 'default' }),
      ).rejects.toMatchObject({ code: 'conflict' });
      await expect(
        sut.createUser({ email: 'not-an-email', name: 'X', role: 'viewer', projectId: 'default' }),
      ).rejects.toMatchObject({
        code: 'invalid_input',
        message: expect.stringContaining('email'),
      });
      await expect(
        sut.createUser({
          email: 'x@example.com',
          name: 'X',
          password: 'short',
          role: 'viewer',
          projectId: 'default',
        }),
      ).rejects.toMatchObject({ code: 'invalid_input' });
      await expect(
        sut.createUser({ email: 'x@example.com', name: 'X', role: 'root' as never, projectId: 'default' }),
      ).rejects.toMatchObject({ code: 'invalid_input' });
      await expect(
        sut.createUser({ email: 'x@example.com', name: 'X', role: 'viewer', projectId: 'nope' }),
      ).rejects.toMatchObject({
        code: 'not_found',
        message: expect.stringContaining('known projects: default, line3'),
      });
    });

    it('sets roles per project and never demotes the last admin', async () => {
      const cy = await sut.createUser({
        email: 'cy@example.com',
        name: 'Cy',
        password: 'cy-password-1',
        role: 'viewer',
        projectId: 'default',
      });
      await sut.setRole('line3', cy.id, 'admin');
      await sut.setRole('default', cy.id, 'approver');
      expect(await sut.roleOf('line3', cy.id)).toBe('admin');
      expect(await sut.roleOf('default', cy.id)).toBe('approver');
      expect(events.filter((e) => e.type === 'accounts.role_changed').length).toBe(2);
      await expect(sut.setRole('line3', cy.id, 'viewer')).rejects.toMatchObject({
        code: 'conflict',
        message: expect.stringContaining('last admin'),
      });
      await expect(sut.setRole('line3', 'usr_missing', 'viewer')).rejects.toMatchObject({
        code: 'not_found',
      });
      await expect(sut.setRole('ghost', cy.id, 'viewer')).rejects.toMatchObject({ code: 'not_found' });
    });

    it('logs in, stores only the session hash, authenticates per project, slides expiry and logs out', async () => {
      await expect(sut.login('dee@example.com', 'whatever-1')).rejects.toMatchObject({
        code: 'unauthenticated',
        message: 'wrong email or password',
      });
      expect(events.map((e) => e.type)).toEqual(['accounts.login_failed']);
      const dee = await sut.createUser({
        email: 'dee@example.com',
        name: 'Dee',
        password: 'dee-password-1',
        role: 'approver',
        projectId: 'default',
      });
      await expect(sut.login('dee@example.com', 'wrong-password')).rejects.toMatchObject({
        code: 'unauthenticated',
        message: 'wrong email or password',
      });
      const { sessionToken, expiresAt, user } = await sut.login('DEE@example.com', 'dee-password-1');
      expect(user.id).toBe(dee.id);
      expect(expiresAt).toBe(clock + 7 * DAY);
      const stored = await db.kysely
        .selectFrom('sessions')
        .selectAll()
        .where('user_id', '=', dee.id)
        .execute();
      expect(stored.map((s) => s.id_hash)).toEqual([sha(sessionToken)]);

      expect(await sut.authenticateSession(sessionToken, 'default')).toEqual({
        userId: dee.id,
        email: 'dee@example.com',
        name: 'Dee',
        role: 'approver',
        kind: 'user',
      });
      await expect(sut.authenticateSession(sessionToken, 'line3')).rejects.toMatchObject({
        code: 'forbidden',
        message: expect.stringContaining('no role in project "line3"'),
      });
      // an unknown project answers like a foreign one and names only the caller's own projects
      await expect(sut.authenticateSession(sessionToken, 'ghost')).rejects.toMatchObject({
        code: 'forbidden',
        message: expect.stringContaining('your projects: default.'),
      });
      await expect(sut.authenticateSession('x'.repeat(43), 'default')).rejects.toMatchObject({
        code: 'unauthenticated',
      });

      clock += 6 * DAY;
      await sut.authenticateSession(sessionToken, 'default');
      clock += 6 * DAY;
      await expect(sut.authenticateSession(sessionToken, 'default')).resolves.toMatchObject({
        userId: dee.id,
      });
      clock += 8 * DAY;
      await expect(sut.authenticateSession(sessionToken, 'default')).rejects.toMatchObject({
        code: 'unauthenticated',
        message: expect.stringContaining('sign in again'),
      });

      const second = await sut.login('dee@example.com', 'dee-password-1');
      await sut.logout(second.sessionToken);
      await sut.logout(second.sessionToken);
      await expect(sut.authenticateSession(second.sessionToken, 'default')).rejects.toMatchObject({
        code: 'unauthenticated',
      });
    });

    it('ends sessions of a disabled user and when the password changes', async () => {
      const ed = await sut.createUser({
        email: 'ed@example.com',
        name: 'Ed',
        password: 'ed-password-1',
        role: 'viewer',
        projectId: 'default',
      });
      const s1 = await sut.login('ed@example.com', 'ed-password-1');
      await sut.setPassword(ed.id, 'ed-password-2');
      await expect(sut.authenticateSession(s1.sessionToken, 'default')).rejects.toMatchObject({
        code: 'unauthenticated',
      });
      const s2 = await sut.login('ed@example.com', 'ed-password-2');
      await db.kysely.updateTable('users').set({ disabled: 1 }).where('id', '=', ed.id).execute();
      await expect(sut.authenticateSession(s2.sessionToken, 'default')).rejects.toMatchObject({
        code: 'unauthenticated',
      });
      await expect(sut.login('ed@example.com', 'ed-password-2')).rejects.toMatchObject({
        code: 'unauthenticated',
        message: 'wrong email or password',
      });
    });

    it('issues API tokens shown once, stored hashed, scoped to a project, no stronger than their creator', async () => {
      const fay = await sut.createUser({
        email: 'fay@example.com',
        name: 'Fay',
        password: 'fay-password-1',
        role: 'operator',
        projectId: 'default',
      });
      await expect(
        sut.createApiToken({
          userId: fay.id,
          projectId: 'default',
          name: 'ci',
          role: 'admin',
          scopes: ['*'],
        }),
      ).rejects.toMatchObject({
        code: 'forbidden',
        message: expect.stringContaining('your role in project "default" is "operator"'),
      });
      await expect(
        sut.createApiToken({ userId: fay.id, projectId: 'line3', name: 'ci', role: 'viewer', scopes: ['*'] }),
      ).rejects.toMatchObject({ code: 'forbidden' });
      await expect(
        sut.createApiToken({ userId: fay.id, projectId: 'default', name: 'ci', role: 'viewer', scopes: [] }),
      ).rejects.toMatchObject({ code: 'invalid_input' });
      await expect(
        sut.createApiToken({
          userId: fay.id,
          projectId: 'default',
          name: 'ci',
          role: 'viewer',
          scopes: ['Bad Scope'],
        }),
      ).rejects.toMatchObject({ code: 'invalid_input' });

      const { id, token, expiresAt } = await sut.createApiToken({
        userId: fay.id,
        projectId: 'default',
        name: 'gpu box',
        role: 'operator',
        scopes: ['datasets:read', 'mcp'],
      });
      expect(expiresAt).toBeNull();
      expect(token).toMatch(new RegExp(`^via_${id}_[0-9a-f]{64}$`));
      const row = await db.kysely
        .selectFrom('api_tokens')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      const secret = token.slice(token.lastIndexOf('_') + 1);
      expect(row.token_hash).toBe(sha(secret));
      expect(JSON.stringify(row)).not.toContain(secret);
      expect(events.map((e) => e.type)).toContain('accounts.token_created');

      const p = await sut.authenticateToken(token, 'default');
      expect(p).toEqual({
        userId: fay.id,
        email: 'fay@example.com',
        name: 'Fay',
        role: 'operator',
        kind: 'token',
        scopes: ['datasets:read', 'mcp'],
        projectId: 'default',
        tokenId: id,
      });
      expect((await sut.authenticateToken(token)).projectId).toBe('default');
      expect((await sut.listApiTokens(fay.id))[0]).toMatchObject({
        id,
        name: 'gpu box',
        lastUsedAt: clock,
        revokedAt: null,
      });
      expect(JSON.stringify(await sut.listApiTokens(fay.id))).not.toContain(row.token_hash);

      await expect(sut.authenticateToken(token, 'line3')).rejects.toMatchObject({
        code: 'forbidden',
        message: expect.stringContaining('belongs to project "default"'),
      });
      await expect(
        sut.authenticateToken(`${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`),
      ).rejects.toMatchObject({ code: 'unauthenticated' });
      await expect(sut.authenticateToken('via_nonsense')).rejects.toMatchObject({
        code: 'unauthenticated',
        message: expect.stringContaining('malformed'),
      });
      await expect(sut.authenticateToken(`via_tok_zzzz_${'0'.repeat(64)}`)).rejects.toMatchObject({
        code: 'unauthenticated',
      });

      await sut.setRole('default', fay.id, 'viewer');
      expect((await sut.authenticateToken(token)).role).toBe('viewer');
      await sut.setRole('default', fay.id, 'operator');

      await sut.revokeApiToken(id, 'system');
      await sut.revokeApiToken(id, 'system');
      await expect(sut.authenticateToken(token)).rejects.toMatchObject({
        code: 'unauthenticated',
        message: expect.stringContaining('revoked'),
      });
      await expect(sut.revokeApiToken('tok_missing', 'system')).rejects.toMatchObject({ code: 'not_found' });
      expect((await sut.listApiTokens(fay.id))[0]?.revokedAt).toBe(clock);
    });

    it('expires API tokens', async () => {
      const gus = await sut.createUser({
        email: 'gus@example.com',
        name: 'Gus',
        role: 'admin',
        projectId: 'line3',
      });
      const { token, expiresAt } = await sut.createApiToken({
        userId: gus.id,
        projectId: 'line3',
        name: 'short',
        role: 'admin',
        scopes: ['*'],
        expiresInDays: 1,
      });
      expect(expiresAt).toBe(clock + DAY);
      await expect(sut.authenticateToken(token, 'line3')).resolves.toMatchObject({
        role: 'admin',
        kind: 'token',
      });
      clock += DAY + 1;
      await expect(sut.authenticateToken(token, 'line3')).rejects.toMatchObject({
        code: 'unauthenticated',
        message: expect.stringContaining('expired'),
      });
      await expect(sut.loginWithIdToken('x')).rejects.toMatchObject({ code: 'invalid_input' });
    });
  });

  describe(`${AccountService.name} (${name}, first start)`, () => {
    it('hands out exactly one admin password when two instances start at once', async () => {
      const { db, cleanup } = await init();
      try {
        await db.migrate();
        const make = () =>
          new AccountService({ db, identity: new LocalIdentityProvider({ db }), log: silentLogger() });
        const results = await Promise.all([make().bootstrapAdmin(), make().bootstrapAdmin()]);
        expect(results.filter((r) => r !== undefined).length).toBe(1);
        expect((await make().listMembers('default')).map((m) => [m.email, m.role])).toEqual([
          [BOOTSTRAP_ADMIN_EMAIL, 'admin'],
        ]);
      } finally {
        await db.close();
        await cleanup?.();
      }
    });
  });

  describe(`${AccountService.name} (${name}, Firebase)`, () => {
    const emulator = new FirebaseEmulatorStandIn();
    let db: Db;
    let cleanup: (() => Promise<void>) | undefined;
    let identity: FirebaseIdentityProvider;
    let sut: AccountService;
    const token = (claims: Record<string, unknown>) => FirebaseEmulatorStandIn.token('vision-test', claims);

    beforeAll(async () => {
      ({ db, cleanup } = await init());
      await db.migrate();
      emulator.users.set('uid_hal', { email: 'hal@example.com' });
      process.env.FIREBASE_AUTH_EMULATOR_HOST = await emulator.start();
      identity = new FirebaseIdentityProvider({ projectId: 'vision-test' });
      sut = new AccountService({ db, identity, log: silentLogger() });
      await sut.ensureDefaultProject();
      await db.kysely
        .insertInto('projects')
        .values({ id: 'line3', name: 'line3', description: '', created_at: 1 })
        .execute();
    });
    afterAll(async () => {
      await identity?.close();
      delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
      await emulator.stop();
      await db?.close();
      await cleanup?.();
    });

    it('creates the user on first sign-in and maps claims to memberships, updating them on the next sign-in', async () => {
      expect(await sut.bootstrapAdmin()).toBeUndefined();
      await expect(sut.login('hal@example.com', 'pw')).rejects.toMatchObject({
        code: 'invalid_input',
        message: expect.stringContaining('Firebase'),
      });

      const first = await sut.loginWithIdToken(
        token({
          sub: 'uid_hal',
          email: 'hal@example.com',
          email_verified: true,
          name: 'Hal',
          roles: { default: 'approver', line3: 'viewer', nowhere: 'admin' },
        }),
      );
      expect(first.user).toMatchObject({ email: 'hal@example.com', name: 'Hal', provider: 'firebase' });
      expect(await sut.roleOf('default', first.user.id)).toBe('approver');
      expect(await sut.roleOf('line3', first.user.id)).toBe('viewer');
      expect(await sut.authenticateSession(first.sessionToken, 'line3')).toMatchObject({
        role: 'viewer',
        kind: 'user',
      });

      const second = await sut.loginWithIdToken(
        token({
          sub: 'uid_hal',
          email: 'hal@example.com',
          email_verified: true,
          name: 'Hal H.',
          role: 'operator',
        }),
      );
      expect(second.user.id).toBe(first.user.id);
      expect(second.user.name).toBe('Hal H.');
      expect(await sut.roleOf('default', first.user.id)).toBe('operator');
      expect(await sut.roleOf('line3', first.user.id)).toBe('viewer');
      expect(
        (await db.kysely.selectFrom('users').select('id').where('email', '=', 'hal@example.com').execute())
          .length,
      ).toBe(1);

      await expect(
        sut.loginWithIdToken(
          FirebaseEmulatorStandIn.token('other-project', { sub: 'uid_hal', email: 'hal@example.com' }),
        ),
      ).rejects.toMatchObject({
        code: 'unauthenticated',
      });
    });
  });
}
