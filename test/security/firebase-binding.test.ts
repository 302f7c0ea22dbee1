import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountService, DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { FirebaseEmulatorStandIn } from '../../services/infra/auth/firebase-emulator.fixtures.js';
import { FirebaseIdentityProvider } from '../../services/infra/auth/firebase.js';
import { SqliteDb } from '../../services/infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';

// Issue 13 item 7: Firebase sign-in matched accounts by e-mail and ignored email_verified, so a second
// Firebase user with the victim's (unverified) address got the victim's account and admin role; and a
// platform session outlived the Firebase user's revocation. firebase-admin runs in emulator mode against
// the local stand-in (see firebase-emulator.fixtures.ts).
const PROJECT = 'vision-sec';
const token = (claims: Record<string, unknown>) => FirebaseEmulatorStandIn.token(PROJECT, claims);

describe('Firebase sign-in binds the Firebase uid, not the e-mail', () => {
  const emulator = new FirebaseEmulatorStandIn();
  const dir = mkdtempSync(path.join(tmpdir(), 'vfbsec-'));
  let db: SqliteDb;
  let identity: FirebaseIdentityProvider;
  let sut: AccountService;
  // the platform's clock starts 10 minutes in the past, so revocations "now" come after sessions opened at its start
  let clock = Date.now() - 10 * 60_000;

  beforeAll(async () => {
    db = new SqliteDb({ file: path.join(dir, 'accounts.db') });
    await db.migrate();
    emulator.users.set('uid_boss', { email: 'boss@example.com' });
    emulator.users.set('uid_squatter', { email: 'boss@example.com', emailVerified: false });
    emulator.users.set('uid_other_verified', { email: 'boss@example.com' });
    emulator.users.set('uid_newbie', { email: 'newbie@example.com' });
    emulator.users.set('uid_newbie_fake', { email: 'newbie@example.com', emailVerified: false });
    emulator.users.set('uid_unverified', { email: 'nobody@example.com', emailVerified: false });
    emulator.users.set('uid_revoked', { email: 'revoked@example.com' });
    emulator.users.set('uid_disabled', { email: 'disabled@example.com' });
    process.env.FIREBASE_AUTH_EMULATOR_HOST = await emulator.start();
    identity = new FirebaseIdentityProvider({ projectId: PROJECT });
    sut = new AccountService({ db, identity, log: silentLogger(), now: () => clock });
    await sut.ensureDefaultProject();
  });
  afterAll(async () => {
    await identity?.close();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    await emulator.stop();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a second Firebase user with the same unverified e-mail does not get the victim's account or role", async () => {
    const boss = await sut.loginWithIdToken(
      token({
        sub: 'uid_boss',
        email: 'boss@example.com',
        email_verified: true,
        name: 'Boss',
        role: 'admin',
      }),
    );
    expect(await sut.roleOf(DEFAULT_PROJECT_ID, boss.user.id)).toBe('admin');

    await expect(
      sut.loginWithIdToken(
        token({ sub: 'uid_squatter', email: 'boss@example.com', email_verified: false, name: 'Mallory' }),
      ),
    ).rejects.toMatchObject({
      code: 'unauthenticated',
      message: expect.stringContaining('not verified'),
    });
    // even a verified second uid for the address cannot take an account already bound to another uid
    await expect(
      sut.loginWithIdToken(
        token({ sub: 'uid_other_verified', email: 'boss@example.com', email_verified: true }),
      ),
    ).rejects.toMatchObject({
      code: 'unauthenticated',
      message: expect.stringContaining('bound to another Firebase sign-in'),
    });
    const rows = await db.kysely
      .selectFrom('users')
      .select(['id', 'firebase_uid'])
      .where('email', '=', 'boss@example.com')
      .execute();
    expect(rows).toEqual([{ id: boss.user.id, firebase_uid: 'uid_boss' }]);
    expect(
      (await db.kysely.selectFrom('sessions').select('user_id').execute()).map((s) => s.user_id),
    ).toEqual([boss.user.id]);
  });

  it('a first sign-in with an unverified e-mail creates no account', async () => {
    await expect(
      sut.loginWithIdToken(token({ sub: 'uid_unverified', email: 'nobody@example.com' })),
    ).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(
      await db.kysely.selectFrom('users').select('id').where('email', '=', 'nobody@example.com').execute(),
    ).toEqual([]);
  });

  it('an account an admin prepared is bound by the first verified sign-in only, then matched by uid', async () => {
    const prepared = await sut.createUser({
      email: 'newbie@example.com',
      name: 'Newbie',
      role: 'approver',
      projectId: DEFAULT_PROJECT_ID,
    });
    await expect(
      sut.loginWithIdToken(
        token({ sub: 'uid_newbie_fake', email: 'newbie@example.com', email_verified: false }),
      ),
    ).rejects.toMatchObject({ code: 'unauthenticated' });
    const first = await sut.loginWithIdToken(
      token({ sub: 'uid_newbie', email: 'newbie@example.com', email_verified: true, name: 'Newbie' }),
    );
    expect(first.user.id).toBe(prepared.id);
    // the person later changes their address in Firebase: the uid still finds the account
    const later = await sut.loginWithIdToken(
      token({
        sub: 'uid_newbie',
        email: 'newbie.renamed@example.com',
        email_verified: false,
        name: 'Newbie',
      }),
    );
    expect(later.user.id).toBe(prepared.id);
    expect(await sut.roleOf(DEFAULT_PROJECT_ID, later.user.id)).toBe('approver');
  });

  it('a revoked Firebase user loses access: old ID tokens and the open platform session are refused', async () => {
    const session = await sut.loginWithIdToken(
      token({ sub: 'uid_revoked', email: 'revoked@example.com', email_verified: true, role: 'viewer' }),
    );
    const oldToken = token({ sub: 'uid_revoked', email: 'revoked@example.com', email_verified: true });
    expect(await sut.authenticateSession(session.sessionToken, DEFAULT_PROJECT_ID)).toMatchObject({
      kind: 'user',
    });

    // auth.revokeRefreshTokens(uid) on the real service sets validSince to now
    emulator.users.get('uid_revoked')!.validSince = Math.floor(Date.now() / 1000) + 1;
    await expect(sut.loginWithIdToken(oldToken)).rejects.toMatchObject({ code: 'unauthenticated' });
    clock += 61_000;
    await expect(sut.authenticateSession(session.sessionToken, DEFAULT_PROJECT_ID)).rejects.toMatchObject({
      code: 'unauthenticated',
    });
    // the session is gone for good, not only refused once
    emulator.users.get('uid_revoked')!.validSince = undefined;
    await expect(sut.authenticateSession(session.sessionToken, DEFAULT_PROJECT_ID)).rejects.toMatchObject({
      code: 'unauthenticated',
    });
  });

  it('a Firebase user disabled in Firebase loses the platform session it already had', async () => {
    const session = await sut.loginWithIdToken(
      token({ sub: 'uid_disabled', email: 'disabled@example.com', email_verified: true, role: 'viewer' }),
    );
    emulator.users.get('uid_disabled')!.disabled = true;
    clock += 61_000;
    await expect(sut.authenticateSession(session.sessionToken, DEFAULT_PROJECT_ID)).rejects.toMatchObject({
      code: 'unauthenticated',
    });
    await expect(
      sut.loginWithIdToken(
        token({ sub: 'uid_disabled', email: 'disabled@example.com', email_verified: true }),
      ),
    ).rejects.toMatchObject({ code: 'unauthenticated' });
  });
});
