import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../services/accounts/index.js';
import { startTestServer, type TestClient, type TestServer } from './server.fixtures.js';

// An open socket must stop receiving as soon as its credentials stop being valid: at once after sign-out,
// token revocation or a role change, and within the re-check interval when a session simply expires.
describe('open sockets after sign-out, revocation, role change and expiry', () => {
  // `t` keeps the default 60 s re-check, so what happens within 2 s there is the immediate check;
  // `quick` re-checks every 400 ms for the expiry case.
  let t: TestServer;
  let quick: TestServer;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    t = await startTestServer();
    quick = await startTestServer({ web: { socketReauthMs: 400 } });
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await t?.close();
    await quick?.close();
  });

  async function open(
    auth: { cookie?: string; token?: string },
    server: TestServer = t,
  ): Promise<{ socket: Socket; disconnected: Promise<string>; errors: unknown[] }> {
    const socket = connect(server.url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      ...(auth.cookie ? { extraHeaders: { cookie: auth.cookie } } : {}),
      ...(auth.token ? { auth: { token: auth.token } } : {}),
    });
    sockets.push(socket);
    const errors: unknown[] = [];
    socket.on('chat:error', (e: unknown) => errors.push(e));
    const disconnected = new Promise<string>((resolve) =>
      socket.once('disconnect', (reason) => resolve(reason)),
    );
    await new Promise<void>(
      (resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject)),
    );
    return { socket, disconnected, errors };
  }

  const within = <T>(p: Promise<T>, ms: number, what: string) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms),
      ),
    ]);

  it('disconnects the sockets of a session at sign-out, and only those', async () => {
    const first = await t.login('operator');
    const second = await t.login('operator');
    const signedOut = await open({ cookie: first.cookie });
    const other = await open({ cookie: second.cookie });
    expect((await first.fetch('/api/auth/logout', { method: 'POST' })).status).toBe(200);
    expect(await within(signedOut.disconnected, 2000, 'disconnect after sign-out')).toBe(
      'io server disconnect',
    );
    expect(JSON.stringify(signedOut.errors)).toMatch(/sign in again/);
    // The same user's other session is checked too and stays.
    await new Promise((r) => setTimeout(r, 300));
    expect(other.socket.connected).toBe(true);
    const ack = (await other.socket.emitWithAck('chat:send', { message: 'list datasets' })) as {
      ok: boolean;
    };
    expect(ack.ok).toBe(true);
  });

  it('disconnects a socket opened with an API token when the token is revoked', async () => {
    const operator: TestClient = await t.login('operator');
    const created = (await (
      await operator.fetch('/api/tokens', {
        method: 'POST',
        json: { name: 'socket test', role: 'viewer', scopes: ['api'] },
      })
    ).json()) as { id: string; token: string };
    const { disconnected } = await open({ token: created.token });
    expect((await operator.fetch(`/api/tokens/${created.id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await within(disconnected, 2000, 'disconnect after revocation')).toBe('io server disconnect');
  });

  it('applies a lowered role to an open socket at once', async () => {
    const user = await t.platform.accounts.createUser({
      email: 'demoted@example.test',
      name: 'Demoted',
      password: 'correct horse battery',
      role: 'operator',
      projectId: DEFAULT_PROJECT_ID,
    });
    const res = await fetch(`${t.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: user.email, password: 'correct horse battery' }),
    });
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0]!)
      .join('; ');
    const { socket } = await open({ cookie });
    const decide = async () =>
      (await socket.emitWithAck('chat:decide', {
        threadId: 'thr_missing',
        approvalId: 'apr_missing',
        decision: 'approve',
      })) as { ok: boolean; error?: { code: string } };
    expect((await decide()).error?.code).not.toBe('forbidden'); // an operator gets past the role check (to not_found)
    await t.platform.accounts.setRole(DEFAULT_PROJECT_ID, user.id, 'viewer');
    await expect.poll(async () => (await decide()).error?.code, { timeout: 2000 }).toBe('forbidden');
    expect(socket.connected).toBe(true);
  });

  it('disconnects a silent socket whose session expired, within the re-check interval', async () => {
    const operator = await quick.login('operator');
    const { socket, disconnected } = await open({ cookie: operator.cookie }, quick);
    // The session ends without any event (as when it expires): only the periodic re-check can notice.
    await quick.platform.infra.db.kysely
      .deleteFrom('sessions')
      .where('user_id', '=', quick.users.operator.id)
      .execute();
    expect(await within(disconnected, 3000, 'disconnect of the expired session')).toBe(
      'io server disconnect',
    );
    expect(socket.connected).toBe(false);
  });
});
