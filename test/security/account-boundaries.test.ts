import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE } from '../../web-chat/auth.js';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../../web-chat/server.fixtures.js';

async function signIn(
  server: TestServer,
  email: string,
  password = TEST_PASSWORD,
): Promise<{ status: number; cookies: Record<string, string>; body: any }> {
  const res = await fetch(`${server.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  const cookies = Object.fromEntries(
    res.headers.getSetCookie().map((c) => c.split(';')[0]!.split('=') as [string, string]),
  );
  return { status: res.status, cookies, body: await res.json() };
}

describe('account boundaries: tokens, project disclosure, CSRF binding, per-account lockout', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ web: { rateLimits: { login: 1000, api: 100_000 } } });
    const db = server.platform.infra.db.kysely;
    for (const id of ['other', 'secret-acquisition'])
      await db
        .insertInto('projects')
        .values({ id, name: id, description: '', created_at: Date.now() })
        .execute();
    await server.platform.accounts.createUser({
      email: 'other-admin@example.test',
      name: 'Other Admin',
      password: TEST_PASSWORD,
      role: 'admin',
      projectId: 'other',
    });
  }, 60_000);

  afterAll(async () => {
    await server.close();
  });

  it("an admin of another project cannot revoke this project's tokens (REST and service)", async () => {
    const victim = await server.platform.accounts.createApiToken({
      userId: server.users.operator.id,
      projectId: DEFAULT_PROJECT_ID,
      name: 'ci',
      role: 'operator',
      scopes: ['api'],
    });
    const login = await signIn(server, 'other-admin@example.test');
    expect(login.status).toBe(200);
    const cookie = `${SESSION_COOKIE}=${login.cookies[SESSION_COOKIE]}; ${CSRF_COOKIE}=${login.cookies[CSRF_COOKIE]}`;
    const res = await fetch(`${server.url}/api/tokens/${victim.id}`, {
      method: 'DELETE',
      headers: { cookie, [CSRF_HEADER]: login.cookies[CSRF_COOKIE]!, 'x-project-id': 'other' },
    });
    expect(res.status).toBe(404);
    const other = (await server.platform.accounts.listMembers('other'))[0]!;
    await expect(
      server.platform.accounts.revokeApiToken(victim.id, {
        userId: other.userId,
        projectId: 'other',
        role: 'admin',
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
    await expect(server.platform.accounts.authenticateToken(victim.token)).resolves.toMatchObject({
      kind: 'token',
    });
    // the owner and an admin of the token's own project still can
    const own = await server.platform.accounts.createApiToken({
      userId: server.users.viewer.id,
      projectId: DEFAULT_PROJECT_ID,
      name: 'mine',
      role: 'viewer',
      scopes: ['api'],
    });
    await server.platform.accounts.revokeApiToken(own.id, {
      userId: server.users.viewer.id,
      projectId: DEFAULT_PROJECT_ID,
      role: 'viewer',
    });
    const admin = await server.login('admin');
    expect((await admin.fetch(`/api/tokens/${victim.id}`, { method: 'DELETE' })).status).toBe(200);
    await expect(server.platform.accounts.authenticateToken(victim.token)).rejects.toMatchObject({
      code: 'unauthenticated',
    });
  });

  it('errors about projects name only projects the caller belongs to', async () => {
    const viewer = await server.login('viewer');
    for (const project of ['no-such-project', 'other']) {
      const res = await viewer.fetch('/api/me', { headers: { 'x-project-id': project } });
      expect(res.status).toBe(403);
      const text = await res.text();
      expect(text).toContain(DEFAULT_PROJECT_ID);
      expect(text).not.toContain('secret-acquisition');
      if (project !== 'other') expect(text).not.toMatch(/"other"|other,|, other/);
    }
    const token = await server.platform.accounts.createApiToken({
      userId: server.users.viewer.id,
      projectId: DEFAULT_PROJECT_ID,
      name: 'probe',
      role: 'viewer',
      scopes: ['api'],
    });
    const res = await fetch(`${server.url}/api/tokens`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    expect(res.status).toBe(200);
    await expect(
      server.platform.accounts.createApiToken({
        userId: server.users.viewer.id,
        projectId: 'nope',
        name: 'x',
        role: 'viewer',
        scopes: ['api'],
      }),
    ).rejects.toSatisfy(
      (e: Error) => !e.message.includes('secret-acquisition') && !e.message.includes('other'),
    );
  });

  it('refuses a planted CSRF cookie with a matching header: the token is bound to the session', async () => {
    const op = await server.login('operator');
    const session = op.cookie.split('; ').find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    const planted = 'planted-by-attacker-0123456789abcdef';
    const body = JSON.stringify({ name: 'csrf probe', role: 'viewer' });
    const forged = await fetch(`${server.url}/api/tokens`, {
      method: 'POST',
      headers: {
        cookie: `${session}; ${CSRF_COOKIE}=${planted}`,
        [CSRF_HEADER]: planted,
        'content-type': 'application/json',
      },
      body,
    });
    expect(forged.status).toBe(403);
    expect(
      (await server.platform.accounts.listApiTokens(server.users.operator.id)).some(
        (t) => t.name === 'csrf probe',
      ),
    ).toBe(false);
    // the token of another session does not fit this one either
    const other = await server.login('operator');
    const crossed = await fetch(`${server.url}/api/tokens`, {
      method: 'POST',
      headers: {
        cookie: `${session}; ${CSRF_COOKIE}=${other.csrf}`,
        [CSRF_HEADER]: other.csrf,
        'content-type': 'application/json',
      },
      body,
    });
    expect(crossed.status).toBe(403);
    const ok = await op.fetch('/api/tokens', {
      method: 'POST',
      json: { name: 'csrf probe', role: 'viewer' },
    });
    expect(ok.status).toBe(201);
    const me = (await (await op.fetch('/api/me')).json()) as { csrfToken: string };
    expect(me.csrfToken).toBe(op.csrf);
  });

  it('locks an account after repeated wrong passwords, says when to retry, audits it, and the right password waits too', async () => {
    const email = server.users.approver.email;
    for (let i = 0; i < 5; i++) expect((await signIn(server, email, `wrong-password-${i}`)).status).toBe(401);
    const locked = await signIn(server, email);
    expect(locked.status).toBe(429);
    expect(locked.body.error.message).toMatch(
      /too many failed sign-ins for this account; try again after \d{4}-\d\d-\d\dT[\d:.]+Z \(in \d+ s\)/,
    );
    expect(locked.body.error.details.retryAfterSeconds).toBeGreaterThan(0);
    // another account from the same address is not affected
    expect((await signIn(server, server.users.viewer.email)).status).toBe(200);
    const { entries } = await server.platform.audit.query({
      projectId: DEFAULT_PROJECT_ID,
      action: 'accounts.login_locked',
    });
    expect(entries.some((e) => e.data.email === email)).toBe(true);
  });
});
