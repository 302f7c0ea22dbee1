import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roleAtLeast, type Role } from '../../core/context.js';
import { ROUTES } from '../../web-chat/routes/index.js';
import { startTestServer, type TestClient, type TestServer } from '../../web-chat/server.fixtures.js';

const ROLES: Role[] = ['viewer', 'operator', 'approver', 'admin'];

/** A concrete URL for a route path: every `:param` becomes a plausible value. */
function concrete(path: string): string {
  return path.replace(/:([A-Za-z]+)/g, (_, name: string) =>
    name === 'name' ? 'list_datasets' : `x-${name}`,
  );
}

/** The role just below `role`, if any. */
function below(role: Role): Role | undefined {
  const i = ROLES.indexOf(role);
  return i > 0 ? ROLES[i - 1] : undefined;
}

describe('route matrix generated from the route table', () => {
  let server: TestServer;
  const clients = {} as Record<Role, TestClient>;

  beforeAll(async () => {
    server = await startTestServer();
    for (const role of ROLES) clients[role] = await server.login(role);
  }, 60_000);

  afterAll(async () => {
    await server.close();
  });

  it('has routes of every access level to check', () => {
    const levels = new Set(ROUTES.map((r) => r.access));
    expect(levels.has('public')).toBe(true);
    expect([...levels].filter((l) => l !== 'public').length).toBeGreaterThanOrEqual(3);
  });

  it('every non-public route answers 401 without credentials, or with a forged session or token', async () => {
    const failures: string[] = [];
    for (const r of ROUTES.filter((x) => x.access !== 'public')) {
      const url = `${server.url}${concrete(r.path)}`;
      const body = r.method === 'get' ? undefined : JSON.stringify({});
      const attempts: Array<[string, Record<string, string>]> = [
        ['no credentials', {}],
        ['forged session', { cookie: 'via_session=forged-session-id; via_csrf=x', 'x-csrf-token': 'x' }],
        ['forged bearer', { authorization: 'Bearer via_forgedtoken_0123456789abcdef' }],
      ];
      for (const [label, headers] of attempts) {
        const res = await fetch(url, {
          method: r.method.toUpperCase(),
          headers: { 'content-type': 'application/json', ...headers },
          ...(body ? { body } : {}),
        });
        if (res.status !== 401)
          failures.push(`${r.method.toUpperCase()} ${r.path} (${label}): ${res.status}`);
        await res.body?.cancel();
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('every route above viewer answers 403 to the role just below it, before looking at its input', async () => {
    const failures: string[] = [];
    for (const r of ROUTES.filter((x) => x.access !== 'public' && x.access !== 'viewer')) {
      const role = below(r.access as Role)!;
      expect(roleAtLeast(role, r.access as Role)).toBe(false);
      const res = await clients[role].fetch(concrete(r.path), {
        method: r.method.toUpperCase(),
        ...(r.method === 'get' ? {} : { json: {} }),
      });
      if (res.status !== 403)
        failures.push(
          `${r.method.toUpperCase()} ${r.path} as ${role}: ${res.status} ${(await res.text()).slice(0, 120)}`,
        );
      else await res.body?.cancel();
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('a state-changing route refuses a signed-in session without its CSRF token', async () => {
    const failures: string[] = [];
    for (const r of ROUTES.filter((x) => x.access !== 'public' && x.method !== 'get')) {
      const res = await fetch(`${server.url}${concrete(r.path)}`, {
        method: r.method.toUpperCase(),
        headers: { cookie: clients.admin.cookie, 'content-type': 'application/json' },
        body: JSON.stringify({}),
      });
      if (res.status !== 403 && res.status !== 401)
        failures.push(`${r.method.toUpperCase()} ${r.path}: ${res.status}`);
      await res.body?.cancel();
    }
    expect(failures).toEqual([]);
  }, 60_000);
});
