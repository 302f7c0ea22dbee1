import { Ajv2020 } from 'ajv/dist/2020.js';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSRF_HEADER } from './auth.js';
import { ROUTES } from './routes/index.js';
import { SOCKET_EVENT_LIMIT, SOCKET_EVENTS } from './sockets.js';
import { startTestServer, TEST_PASSWORD, type TestServer } from './server.fixtures.js';

const HEADLINE = 'train a helmet detector on dataset helmets-demo and deploy it to line 3 Jetsons';

function concrete(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, 'x1');
}

function socketOf(url: string, opts: { cookie?: string; token?: string; origin?: string } = {}): Socket {
  const headers: Record<string, string> = {};
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.origin) headers.origin = opts.origin;
  return connect(url, {
    transports: ['websocket'],
    extraHeaders: headers,
    auth: opts.token ? { token: opts.token } : {},
    reconnection: false,
    forceNew: true,
  });
}

function connected(socket: Socket): Promise<{ ok: true } | { ok: false; message: string; code?: string }> {
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ ok: true }));
    socket.once('connect_error', (err: Error & { data?: { code?: string } }) =>
      resolve({ ok: false, message: err.message, code: err.data?.code }),
    );
  });
}

describe('web API through the real app', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ web: { rateLimits: { login: 1000, api: 10_000 } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves health and the sign-in page without a session, with a self-only CSP', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const page = await fetch(`${t.url}/login.html`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|https:|\*/);
    expect((await fetch(`${t.url}/vendor/bootstrap/css/bootstrap.min.css`)).status).toBe(200);
    expect((await fetch(`${t.url}/vendor/chart.js/chart.umd.min.js`)).status).toBe(200);
    expect((await fetch(`${t.url}/vendor/firebase/firebase-auth-compat.js`)).status).toBe(200);
    expect((await fetch(`${t.url}/vendor/firebase/package.json`)).status).toBe(404);
    // local accounts: the sign-in page is told nothing about Firebase
    expect(await (await fetch(`${t.url}/api/auth/config`)).json()).toEqual({ mode: 'local' });
  });

  it('refuses every non-public route without credentials (401) and answers JSON errors', async () => {
    for (const r of ROUTES.filter((x) => x.access !== 'public')) {
      const res = await fetch(`${t.url}${concrete(r.path)}`, {
        method: r.method.toUpperCase(),
        headers: { 'content-type': 'application/json' },
        ...(r.method === 'get' ? {} : { body: '{}' }),
      });
      expect(res.status, `${r.method} ${r.path}`).toBe(401);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('unauthenticated');
    }
  });

  it('refuses under-privileged callers of every role-gated route (403)', async () => {
    const viewer = await t.login('viewer');
    for (const r of ROUTES.filter((x) => x.access !== 'public' && x.access !== 'viewer')) {
      const res = await viewer.fetch(concrete(r.path), {
        method: r.method.toUpperCase(),
        ...(r.method === 'get' ? {} : { json: {} }),
      });
      expect(res.status, `${r.method} ${r.path}`).toBe(403);
    }
    const operator = await t.login('operator');
    expect((await operator.fetch('/metrics')).status).toBe(403);
    const admin = await t.login('admin');
    const metrics = await admin.fetch('/metrics');
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('http_request');
  });

  it('signs in with HttpOnly SameSite=Lax cookies, refuses a wrong password, signs out', async () => {
    const bad = await fetch(`${t.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: t.users.viewer.email, password: 'nope-nope' }),
    });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
      /wrong email or password/,
    );
    const ok = await fetch(`${t.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: t.users.viewer.email, password: TEST_PASSWORD }),
    });
    const cookies = ok.headers.getSetCookie();
    const session = cookies.find((c) => c.startsWith('via_session='))!;
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/SameSite=Lax/);
    expect(session).not.toMatch(/Secure/);
    const c = await t.login('viewer');
    const me = (await (await c.fetch('/api/me')).json()) as {
      user: { role: string };
      features: Record<string, boolean>;
    };
    expect(me.user.role).toBe('viewer');
    expect(me.features.chat).toBe(true);
    expect((await c.fetch('/api/auth/logout', { method: 'POST' })).status).toBe(200);
    expect((await c.fetch('/api/me')).status).toBe(401);
  });

  it('marks the session cookie Secure behind TLS (X-Forwarded-Proto from the loopback proxy)', async () => {
    const res = await fetch(`${t.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ email: t.users.viewer.email, password: TEST_PASSWORD }),
    });
    expect(res.headers.getSetCookie().find((c) => c.startsWith('via_session='))).toMatch(/; Secure/);
  });

  it('requires the CSRF header on cookie-authenticated mutations, not on bearer tokens', async () => {
    const c = await t.login('operator');
    const noHeader = await fetch(`${t.url}/api/approvals`, {
      method: 'POST',
      headers: { cookie: c.cookie, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(noHeader.status).toBe(403);
    expect(((await noHeader.json()) as { error: { message: string } }).error.message).toMatch(/CSRF/);
    const wrong = await fetch(`${t.url}/api/auth/logout`, {
      method: 'POST',
      headers: { cookie: c.cookie, [CSRF_HEADER]: 'x'.repeat(c.csrf.length) },
    });
    expect(wrong.status).toBe(403);
    const created = await c.fetch('/api/tokens', {
      method: 'POST',
      json: { name: 'ci', role: 'operator', scopes: ['api'] },
    });
    expect(created.status).toBe(201);
    const { token } = (await created.json()) as { token: string };
    const viaToken = await fetch(`${t.url}/api/tools/verify_audit`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"args":{}}',
    });
    expect(viaToken.status).toBe(200);
    expect(((await viaToken.json()) as { output: { ok: boolean } }).output.ok).toBe(true);
    const mcpOnly = (await (
      await c.fetch('/api/tokens', { method: 'POST', json: { name: 'mcp', role: 'viewer', scopes: ['mcp'] } })
    ).json()) as { token: string };
    expect(
      (await fetch(`${t.url}/api/me`, { headers: { authorization: `Bearer ${mcpOnly.token}` } })).status,
    ).toBe(403);
    expect(
      (await fetch(`${t.url}/api/me`, { headers: { authorization: 'Bearer via_tok_x_00' } })).status,
    ).toBe(401);
    const tooHigh = await c.fetch('/api/tokens', {
      method: 'POST',
      json: { name: 'x', role: 'admin', scopes: ['api'] },
    });
    expect(tooHigh.status).toBe(403);
  });

  it('maps PlatformError codes and bad input to HTTP statuses with actionable messages', async () => {
    const c = await t.login('operator');
    const missing = await c.fetch('/api/approvals/apr_nope');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toMatch(
      /list approvals/,
    );
    const badQuery = await c.fetch('/api/audit?limit=abc');
    expect(badQuery.status).toBe(400);
    expect(((await badQuery.json()) as { error: { message: string } }).error.message).toMatch(
      /^invalid query: limit/,
    );
    const badJson = await c.fetch('/api/approvals', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { message: string } }).error.message).toMatch(
      /not valid JSON/,
    );
    expect((await c.fetch('/api/nothing-here')).status).toBe(404);
    const needsApproval = await c.fetch('/api/tools/start_training', {
      method: 'POST',
      json: { args: { dataset: 'helmets-demo' } },
    });
    expect(needsApproval.status).toBe(409);
    expect(((await needsApproval.json()) as { error: { code: string } }).error.code).toBe(
      'approval_required',
    );
    const viewer = await t.login('viewer');
    const forbidden = await viewer.fetch('/api/tools/start_training', {
      method: 'POST',
      json: { args: { dataset: 'helmets-demo' } },
    });
    expect(forbidden.status).toBe(403);
    const unknownTool = await c.fetch('/api/tools/no_such_tool', { method: 'POST', json: {} });
    expect(unknownTool.status).toBe(404);
  });

  it('serves model evaluations from the evaluation service and refuses to evaluate without an approval', async () => {
    const c = await t.login('operator');
    const unknown = await c.fetch('/api/models/nope@1/evaluations');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(
      /model "nope@1" not found; known models/,
    );
    const noApproval = await c.fetch('/api/models/nope@1/evaluate', {
      method: 'POST',
      json: { split: 'test' },
    });
    // refused by runTool's approval gate (not by the body schema), with what to do next
    expect(noApproval.status).toBe(409);
    expect(((await noApproval.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'approval_required',
      message: expect.stringMatching(/approvalId/),
    });
  });

  it('serves a valid OpenAPI 3.1 document covering every route with its role', async () => {
    const c = await t.login('viewer');
    const doc = (await (await c.fetch('/api/openapi.json')).json()) as {
      openapi: string;
      paths: Record<string, Record<string, Record<string, unknown>>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    const ajv = new Ajv2020({ strict: false });
    const ids = new Set<string>();
    for (const r of ROUTES) {
      const op = doc.paths[r.path.replace(/:([A-Za-z_]+)/g, '{$1}')]?.[r.method];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(op!['x-required-role']).toBe(r.access);
      ids.add(op!.operationId as string);
      const body = (op!.requestBody as { content: Record<string, { schema: object }> } | undefined)?.content[
        'application/json'
      ]?.schema;
      if (body) expect(() => ajv.compile(body)).not.toThrow();
      for (const p of (op!.parameters as Array<{ schema: object }>) ?? [])
        expect(() => ajv.compile(p.schema)).not.toThrow();
    }
    expect(ids.size).toBe(ROUTES.length);
  });

  it('runs the headline request over REST: plan, approval card data, roles enforced on decisions', async () => {
    const operator = await t.login('operator');
    const res = await operator.fetch('/api/conversations', { method: 'POST', json: { message: HEADLINE } });
    expect(res.status).toBe(201);
    const view = (await res.json()) as {
      id: string;
      plan: { steps: Array<{ tool: string }> };
      pendingApproval: { approvalId: string; tool: string; risk: string; policy: { minRole: string } };
    };
    expect(view.plan.steps.map((s) => s.tool)).toEqual(['start_training', 'start_rollout']);
    expect(view.pendingApproval).toMatchObject({
      tool: 'start_training',
      risk: 'write',
      policy: { minRole: 'operator' },
    });
    const viewer = await t.login('viewer');
    const refused = await viewer.fetch(`/api/approvals/${view.pendingApproval.approvalId}/decide`, {
      method: 'POST',
      json: { decision: 'approve' },
    });
    expect(refused.status).toBe(403);
    const decided = await operator.fetch(`/api/conversations/${view.id}/decide`, {
      method: 'POST',
      json: { approvalId: view.pendingApproval.approvalId, decision: 'approve' },
    });
    expect(decided.status).toBe(200);
    expect(((await decided.json()) as { status: string }).status).toBe('waiting');
    const again = await operator.fetch(`/api/approvals/${view.pendingApproval.approvalId}/decide`, {
      method: 'POST',
      json: { decision: 'reject', reason: 'late' },
    });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { status: string }).status).not.toBe('rejected');
  });

  it('refuses unauthenticated and cross-origin socket handshakes and streams agent events to an authenticated client', async () => {
    const anonymous = socketOf(t.url);
    expect(await connected(anonymous)).toMatchObject({ ok: false, code: 'unauthenticated' });
    anonymous.close();
    const c = await t.login('viewer');
    const evil = socketOf(t.url, { cookie: c.cookie, origin: 'https://evil.example' });
    expect(await connected(evil)).toMatchObject({ ok: false, code: 'forbidden' });
    evil.close();

    const s = socketOf(t.url, { cookie: c.cookie });
    expect(await connected(s)).toEqual({ ok: true });
    const bad = (await s.emitWithAck('chat:send', { message: '' })) as {
      ok: boolean;
      error: { code: string };
    };
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    const types: string[] = [];
    const done = new Promise<void>((resolve) => {
      s.on('agent', (e: { type: string }) => {
        types.push(e.type);
        if (e.type === 'agent.report') resolve();
      });
    });
    const ack = (await s.emitWithAck('chat:send', { message: 'list datasets' })) as {
      ok: boolean;
      threadId: string;
    };
    expect(ack.ok).toBe(true);
    await done;
    expect(types[0]).toBe('agent.plan');
    const decide = (await s.emitWithAck('chat:decide', {
      threadId: ack.threadId,
      approvalId: 'apr_x',
      decision: 'approve',
    })) as { ok: boolean; error: { code: string } };
    expect(decide).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(Object.keys(SOCKET_EVENTS)).toContain('chat:decide');
    const acks = (await Promise.all(
      Array.from({ length: SOCKET_EVENT_LIMIT + 5 }, () =>
        s.emitWithAck('unsubscribe', { kind: 'job', id: 'j1' }),
      ),
    )) as Array<{ ok: boolean; error?: { code: string } }>;
    expect(acks.some((a) => a.error?.code === 'rate_limited')).toBe(true);
    s.close();
  });
});

describe('rate limits', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ web: { rateLimits: { login: 3, api: 10_000 } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 429 with Retry-After after too many sign-in attempts', async () => {
    const attempt = () =>
      fetch(`${t.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'x@example.test', password: 'wrongwrong' }),
      });
    for (let i = 0; i < 3; i++) expect((await attempt()).status).toBe(401);
    const limited = await attempt();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'rate_limited',
      message: expect.stringMatching(/wait \d+ s/),
    });
  });
});
