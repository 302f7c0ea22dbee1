import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { roleAtLeast, type Role } from '../../core/context.js';
import { ROUTES } from '../../web-chat/routes/index.js';
import { SOCKET_EVENTS } from '../../web-chat/sockets.js';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../../web-chat/server.fixtures.js';

const ROLES: Role[] = ['viewer', 'operator', 'approver', 'admin'];
type EventName = keyof typeof SOCKET_EVENTS;
type Ack = { ok: boolean; error?: { code: string; message: string }; threadId?: string };

/**
 * A payload each event's schema accepts, so a refusal can only come from the role check. A new
 * event in SOCKET_EVENTS without one here fails the matrix (see the first test).
 */
const VALID: Record<EventName, unknown> = {
  subscribe: { kind: 'job', id: 'job_matrix' },
  unsubscribe: { kind: 'job', id: 'job_matrix' },
  'chat:send': { message: 'list datasets' },
  'chat:decide': { threadId: 'thr_matrix', approvalId: 'apr_matrix', decision: 'approve' },
};

function below(role: Role): Role | undefined {
  const i = ROLES.indexOf(role);
  return i > 0 ? ROLES[i - 1] : undefined;
}

interface Credentials {
  cookie?: string;
  token?: string;
  origin?: string;
  projectId?: string;
}

function socketOf(url: string, c: Credentials): Socket {
  const headers: Record<string, string> = {};
  if (c.cookie) headers.cookie = c.cookie;
  if (c.origin) headers.origin = c.origin;
  const auth: Record<string, string> = {};
  if (c.token) auth.token = c.token;
  if (c.projectId) auth.projectId = c.projectId;
  return connect(url, {
    transports: ['websocket'],
    extraHeaders: headers,
    auth,
    reconnection: false,
    forceNew: true,
  });
}

/** Connects; resolves with the refusal's code when the handshake is refused. */
function handshake(
  socket: Socket,
): Promise<{ ok: true } | { ok: false; code: string | undefined; message: string }> {
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ ok: true }));
    socket.once('connect_error', (err: Error & { data?: { code?: string } }) =>
      resolve({ ok: false, code: err.data?.code, message: err.message }),
    );
  });
}

describe('socket event matrix generated from SOCKET_EVENTS', () => {
  let server: TestServer;
  const sessions = {} as Record<Role, string>;
  const tokens = {} as Record<Role, string>;
  let outsider: { cookie: string };
  const open: Socket[] = [];

  const connected = async (c: Credentials): Promise<Socket> => {
    const s = socketOf(server.url, c);
    open.push(s);
    const r = await handshake(s);
    if (!r.ok) throw new Error(`handshake refused: ${r.code} ${r.message}`);
    return s;
  };

  beforeAll(async () => {
    server = await startTestServer({ web: { rateLimits: { login: 1000, api: 100_000 } } });
    for (const role of ROLES) {
      sessions[role] = (await server.login(role)).cookie;
      tokens[role] = (
        await server.platform.accounts.createApiToken({
          userId: server.users[role].id,
          projectId: DEFAULT_PROJECT_ID,
          name: `matrix-${role}`,
          role,
          scopes: ['api'],
        })
      ).token;
    }
    // someone with a role in another project only
    await server.platform.infra.db.kysely
      .insertInto('projects')
      .values({ id: 'other', name: 'other', description: '', created_at: Date.now() })
      .execute();
    await server.platform.accounts.createUser({
      email: 'outsider@example.test',
      name: 'Outsider',
      password: TEST_PASSWORD,
      role: 'admin',
      projectId: 'other',
    });
    const login = await fetch(`${server.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'outsider@example.test', password: TEST_PASSWORD, projectId: 'other' }),
    });
    expect(login.status).toBe(200);
    outsider = {
      cookie: login.headers
        .getSetCookie()
        .map((c) => c.split(';')[0]!)
        .join('; '),
    };
  }, 60_000);

  afterAll(async () => {
    for (const s of open) s.close();
    await server?.close();
  });

  it('has a valid sample payload for every event and events of more than one access level', () => {
    for (const [name, def] of Object.entries(SOCKET_EVENTS)) {
      expect(VALID[name as EventName], `add a sample payload for socket event "${name}"`).toBeDefined();
      expect(
        def.schema.safeParse(VALID[name as EventName]).success,
        `sample payload of "${name}" must pass its schema`,
      ).toBe(true);
      expect(ROLES).toContain(def.role);
    }
    expect(new Set(Object.values(SOCKET_EVENTS).map((d) => d.role)).size).toBeGreaterThan(1);
    // an event does what a REST route does: it needs the same role, so the socket is no way around the route table
    const twins: Array<[EventName, string, string]> = [
      ['chat:send', 'post', '/api/conversations'],
      ['chat:send', 'post', '/api/conversations/:id/messages'],
      ['chat:decide', 'post', '/api/conversations/:id/decide'],
      ['subscribe', 'get', '/api/conversations/:id'],
    ];
    for (const [event, method, routePath] of twins) {
      const route = ROUTES.find((r) => r.method === method && r.path === routePath);
      expect(route, `${method} ${routePath} in ROUTES`).toBeDefined();
      expect({ event, role: SOCKET_EVENTS[event].role }).toEqual({ event, role: route!.access });
    }
  });

  it('refuses the handshake without credentials, with forged ones, a token lacking the api scope, a foreign origin, or a project the caller is not in', async () => {
    const apiless = (
      await server.platform.accounts.createApiToken({
        userId: server.users.admin.id,
        projectId: DEFAULT_PROJECT_ID,
        name: 'mcp only',
        role: 'admin',
        scopes: ['mcp'],
      })
    ).token;
    const attempts: Array<[string, Credentials, string]> = [
      ['no credentials', {}, 'unauthenticated'],
      ['forged session', { cookie: 'via_session=forged-session-id-0123456789abcdef' }, 'unauthenticated'],
      ['forged API token', { token: 'via_forgedtoken_0123456789abcdef' }, 'unauthenticated'],
      ['unknown bearer', { token: 'not-a-platform-token' }, 'unauthenticated'],
      ['token without the api scope', { token: apiless }, 'forbidden'],
      [
        'session from a foreign origin',
        { cookie: sessions.admin, origin: 'https://evil.example' },
        'forbidden',
      ],
      [
        'outsider asking for the default project',
        { cookie: outsider.cookie, projectId: DEFAULT_PROJECT_ID },
        'forbidden',
      ],
      [
        'default-project admin asking for another project',
        { cookie: sessions.admin, projectId: 'other' },
        'forbidden',
      ],
      [
        'default-project token asking for another project',
        { token: tokens.admin, projectId: 'other' },
        'forbidden',
      ],
    ];
    const outcomes: string[] = [];
    for (const [label, credentials, code] of attempts) {
      const s = socketOf(server.url, credentials);
      open.push(s);
      const r = await handshake(s);
      outcomes.push(`${label}: ${r.ok ? 'connected' : r.code}`);
      if (!r.ok) expect(r.message, label).not.toMatch(/\n\s+at /);
      expect.soft(r.ok ? 'connected' : r.code, label).toBe(code);
      s.close();
    }
    // the same callers with valid credentials do connect, so the refusals above are about the credentials
    await connected({ cookie: sessions.viewer });
    await connected({ token: tokens.viewer });
    await connected({ cookie: outsider.cookie, projectId: 'other' });
    expect(outcomes).toHaveLength(attempts.length);
  });

  it('every event refuses the role just below its minimum (session and API token), before looking at its input', async () => {
    const failures: string[] = [];
    const checked: string[] = [];
    for (const [name, def] of Object.entries(SOCKET_EVENTS) as Array<
      [EventName, (typeof SOCKET_EVENTS)[EventName]]
    >) {
      const lower = below(def.role);
      if (lower === undefined) {
        // the lowest role: the only callers below it have no role in the project, and the handshake refuses them (above)
        const s = socketOf(server.url, { cookie: outsider.cookie, projectId: DEFAULT_PROJECT_ID });
        open.push(s);
        const r = await handshake(s);
        if (r.ok || r.code !== 'forbidden')
          failures.push(`${name}: a caller without a role in the project connected`);
        s.close();
        checked.push(`${name}: outsider`);
        continue;
      }
      expect(roleAtLeast(lower, def.role)).toBe(false);
      for (const [via, credentials] of [
        ['session', { cookie: sessions[lower] }],
        ['token', { token: tokens[lower] }],
      ] as Array<[string, Credentials]>) {
        const s = await connected(credentials);
        for (const payload of [VALID[name], {}]) {
          const ack = (await s.emitWithAck(name, payload)) as Ack;
          if (ack.ok || ack.error?.code !== 'forbidden')
            failures.push(
              `${name} as ${lower} (${via}) with ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`,
            );
          else if (!ack.error.message.includes(def.role))
            failures.push(`${name}: the refusal does not name the role needed: ${ack.error.message}`);
        }
        s.close();
        checked.push(`${name}: ${lower} via ${via}`);
      }
      // the minimum role itself is let through the role check (it may still fail on the sample's made-up ids)
      const s = await connected({ cookie: sessions[def.role] });
      const ack = (await s.emitWithAck(name, VALID[name])) as Ack;
      if (ack.error?.code === 'forbidden')
        failures.push(`${name} refused its own minimum role ${def.role}: ${ack.error.message}`);
      s.close();
    }
    expect(failures).toEqual([]);
    expect(checked.length).toBeGreaterThanOrEqual(Object.keys(SOCKET_EVENTS).length);
  }, 60_000);

  it("refuses a conversation of another project, and never delivers another project's job events", async () => {
    const member = await connected({ cookie: sessions.viewer });
    const started = (await member.emitWithAck('chat:send', { message: 'list datasets' })) as Ack;
    expect(started.ok).toBe(true);
    const threadId = started.threadId!;

    const stranger = await connected({ cookie: outsider.cookie, projectId: 'other' });
    const attempts: Array<[EventName, unknown]> = [
      ['subscribe', { kind: 'conversation', id: threadId }],
      ['chat:send', { threadId, message: 'list datasets' }],
      ['chat:decide', { threadId, approvalId: 'apr_matrix', decision: 'approve' }],
    ];
    for (const [name, payload] of attempts) {
      const ack = (await stranger.emitWithAck(name, payload)) as Ack;
      expect({ name, ok: ack.ok, code: ack.error?.code }).toEqual({ name, ok: false, code: 'not_found' });
      expect(ack.error?.message).toContain('"other"');
    }
    const own = (await member.emitWithAck('subscribe', { kind: 'conversation', id: threadId })) as Ack;
    expect(own.ok).toBe(true);

    // rooms are named by the caller's project: "joining" a default-project job from another project reaches nothing
    const jobId = 'job_matrix_rooms';
    expect(((await stranger.emitWithAck('subscribe', { kind: 'job', id: jobId })) as Ack).ok).toBe(true);
    expect(((await member.emitWithAck('subscribe', { kind: 'job', id: jobId })) as Ack).ok).toBe(true);
    const leaked: unknown[] = [];
    stranger.on('event', (e: unknown) => leaked.push(e));
    const delivered = new Promise<{ job: { id: string } }>((resolve) => member.on('event', resolve));
    server.platform.events.emit({
      type: 'training.finished',
      projectId: DEFAULT_PROJECT_ID,
      at: Date.now(),
      job: { id: jobId },
      status: 'succeeded',
    } as never);
    expect((await delivered).job.id).toBe(jobId);
    await new Promise((r) => setTimeout(r, 300));
    expect(leaked).toEqual([]);
  });
});
