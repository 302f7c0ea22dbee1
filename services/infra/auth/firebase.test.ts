import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FirebaseEmulatorStandIn } from './firebase-emulator.fixtures.js';
import { createIdentityProvider } from './index.js';
import { FirebaseIdentityProvider } from './firebase.js';

// firebase-admin runs in emulator mode (FIREBASE_AUTH_EMULATOR_HOST) against a local STAND-IN for the
// Auth emulator (see firebase-emulator.fixtures.ts), not the real emulator. firebase-admin itself
// still checks the token's aud, iss, sub, exp and iat, and looks the user up on the stand-in.
const PROJECT = 'vision-test';
const token = (claims: Record<string, unknown>, project = PROJECT) =>
  FirebaseEmulatorStandIn.token(project, claims);

describe(FirebaseIdentityProvider.name, () => {
  const emulator = new FirebaseEmulatorStandIn();
  let sut: FirebaseIdentityProvider;

  beforeAll(async () => {
    emulator.users.set('uid_ana', { email: 'ana@example.com' });
    emulator.users.set('uid_multi', { email: 'multi@example.com' });
    emulator.users.set('uid_off', { email: 'off@example.com', disabled: true });
    process.env.FIREBASE_AUTH_EMULATOR_HOST = await emulator.start();
    sut = new FirebaseIdentityProvider({ projectId: PROJECT });
  });
  afterAll(async () => {
    await sut.close();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    await emulator.stop();
  });

  it('reaches the emulator named in configuration (e.g. from .env) when the process environment lacks it', async () => {
    const host = process.env.FIREBASE_AUTH_EMULATOR_HOST!;
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    const configured = await createIdentityProvider({
      firebaseProjectId: PROJECT,
      firebaseAuthEmulatorHost: host,
      db: undefined as never,
    });
    try {
      emulator.lookups.length = 0;
      expect(
        (await configured.verifyIdToken!(token({ sub: 'uid_ana', email: 'ana@example.com' }))).subject,
      ).toBe('uid_ana');
      expect(emulator.lookups).toContain('uid_ana');
    } finally {
      await configured.close();
      process.env.FIREBASE_AUTH_EMULATOR_HOST = host;
    }
  });

  it('accepts an emulator ID token for its project and maps the role claim to the default project', async () => {
    const identity = await sut.verifyIdToken(
      token({ sub: 'uid_ana', email: 'Ana@Example.com', name: 'Ana', role: 'operator' }),
    );
    expect(identity).toEqual({
      provider: 'firebase',
      subject: 'uid_ana',
      email: 'ana@example.com',
      emailVerified: false,
      name: 'Ana',
      roles: { default: 'operator' },
    });
    expect(emulator.lookups).toContain('uid_ana');
  });

  it('maps a roles claim per project, ignoring unknown role names', async () => {
    const identity = await sut.verifyIdToken(
      token({
        sub: 'uid_multi',
        email: 'multi@example.com',
        role: 'viewer',
        roles: { default: 'approver', line3: 'admin', bad: 'superuser' },
      }),
    );
    expect(identity.roles).toEqual({ default: 'approver', line3: 'admin' });
    expect(identity.name).toBe('multi@example.com');
  });

  it('refuses a token for another Firebase project before looking the user up', async () => {
    emulator.lookups.length = 0;
    await expect(
      sut.verifyIdToken(token({ sub: 'uid_ana', email: 'ana@example.com' }, 'someone-else')),
    ).rejects.toMatchObject({
      code: 'unauthenticated',
      message: expect.stringContaining('argument-error'),
    });
    expect(emulator.lookups).toEqual([]);
  });

  it('refuses expired, malformed, disabled-user and unknown-user tokens', async () => {
    const past = Math.floor(Date.now() / 1000) - 7200;
    const cases = [
      token({ sub: 'uid_ana', email: 'ana@example.com', iat: past, auth_time: past, exp: past + 3600 }),
      'not-a-jwt',
      '',
      token({ sub: 'uid_off', email: 'off@example.com' }),
      token({ sub: 'uid_ghost', email: 'ghost@example.com' }),
    ];
    for (const t of cases)
      await expect(sut.verifyIdToken(t)).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it('refuses an account without an email', async () => {
    await expect(sut.verifyIdToken(token({ sub: 'uid_ana' }))).rejects.toMatchObject({
      code: 'unauthenticated',
      message: expect.stringContaining('no email'),
    });
  });
});
