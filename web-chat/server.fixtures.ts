import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentRuntime } from '../agent/runtime.js';
import { RulesPlanner } from '../agent/rules-planner.js';
import { SimPlatform } from '../evals/sim-platform.js';
import { DEFAULT_PROJECT_ID } from '../services/accounts/index.js';
import { ApprovalService } from '../services/approvals/index.js';
import { loadConfig } from '../app/config.js';
import type { Role } from '../core/context.js';
import { silentLogger } from '../core/log.js';
import { createPlatform, type Platform } from '../app/platform.js';
import { ToolRegistry } from '../tools/registry.js';
import type { HttpAppOptions } from '../app/http.js';
import { CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE } from './auth.js';
import { startHttpServer, type RunningServer } from '../app/http.js';
import { webServicesOf } from '../app/wiring.js';
import { freePort } from '../test/services.fixtures.js';

/** Password of every test user. */
export const TEST_PASSWORD = 'correct horse battery';

/** A signed-in test client: cookies, CSRF token and a fetch that sends both. */
export interface TestClient {
  cookie: string;
  csrf: string;
  fetch(pathname: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

/** An embedded platform behind a real HTTP + socket.io server on an ephemeral port, with one user per role. */
export interface TestServer {
  url: string;
  platform: Platform;
  http: RunningServer;
  /** The simulated training/fleet domain the chat agent drives in tests. */
  sim: SimPlatform;
  agent: AgentRuntime;
  users: Record<Role, { id: string; email: string }>;
  login(role: Role): Promise<TestClient>;
  close(): Promise<void>;
}

/** Starts a TestServer; `env` adds config variables (e.g. SLACK_SIGNING_SECRET). */
export async function startTestServer(
  opts: { env?: Record<string, string>; web?: HttpAppOptions } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vweb-'));
  // A known port, so that signed storage URLs (PUBLIC_URL) point at this server.
  const port = String(await freePort());
  // tests import from and export to their own temp folders (DATA_DIR itself stays off limits)
  const roots = { IMPORT_ROOTS: tmpdir(), EXPORT_ROOTS: tmpdir() };
  const config = loadConfig(
    {
      DATA_DIR: dir,
      PORT: port,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      LOG_LEVEL: 'silent',
      EMBEDDED_GPU_RUNNER: 'false',
      SIMULATED_DEVICES: '0',
      DEMO_DATASET: 'false',
      ...roots,
      ...opts.env,
    },
    dir,
  );
  const log = silentLogger();
  const platform = await createPlatform(config, log);
  await platform.prepare();
  const sim = new SimPlatform();
  const registry = new ToolRegistry([
    ...webServicesOf(platform)
      .tools.registry.list()
      .filter((t) => !sim.tools().some((s) => s.name === t.name)),
    ...sim.tools(),
  ]);
  // Edited arguments are validated by the same registry the agent runs (the simulated domain tools).
  const approvals = new ApprovalService({
    db: platform.infra.db,
    audit: platform.audit,
    events: platform.events,
    log,
    strict: config.APPROVAL_STRICT,
    ttlMs: config.APPROVAL_TTL_HOURS * 3_600_000,
    validateArgs: (tool, args) => registry.parseInput(tool, args),
  });
  // the platform's real services behind every tool the simulated domain does not replace (cancel_training, pause_rollout…)
  const toolServices = {
    ...platform.tools.services,
    approvals,
    audit: platform.audit,
    approvalStrict: config.APPROVAL_STRICT,
  };
  const agent = new AgentRuntime({
    db: platform.infra.db.kysely,
    registry,
    services: toolServices,
    planner: new RulesPlanner(),
    catalog: sim.catalog(),
    log,
    waitSources: sim.waitSources(),
    domainEvents: [platform.events, sim.events],
    pollIntervalMs: 0,
  });
  await agent.start();
  const http = await startHttpServer(platform, {
    host: '127.0.0.1',
    web: {
      ...opts.web,
      // every test signs in afresh, often more than the default 10 a minute; a test of the limit sets its own
      rateLimits: { login: 1000, ...opts.web?.rateLimits },
      services: { agent, approvals, tools: { registry, services: toolServices }, ...opts.web?.services },
    },
  });
  const users = {} as Record<Role, { id: string; email: string }>;
  for (const role of ['viewer', 'operator', 'approver', 'admin'] as const) {
    const email = `${role}@example.test`;
    const user = await platform.accounts.createUser({
      email,
      name: role[0]!.toUpperCase() + role.slice(1),
      password: TEST_PASSWORD,
      role,
      projectId: DEFAULT_PROJECT_ID,
    });
    users[role] = { id: user.id, email };
  }
  const url = http.url;
  return {
    url,
    platform,
    http,
    sim,
    agent,
    users,
    async login(role) {
      const res = await fetch(`${url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: users[role].email, password: TEST_PASSWORD }),
      });
      if (res.status !== 200) throw new Error(`login as ${role} failed: ${res.status} ${await res.text()}`);
      const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0]!);
      const cookie = cookies.join('; ');
      const csrf = cookies.find((c) => c.startsWith(`${CSRF_COOKIE}=`))!.slice(CSRF_COOKIE.length + 1);
      if (!cookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`))) throw new Error('no session cookie');
      return {
        cookie,
        csrf,
        fetch: (pathname, init = {}) => {
          const headers = new Headers(init.headers);
          headers.set('cookie', cookie);
          headers.set(CSRF_HEADER, csrf);
          if (init.json !== undefined) headers.set('content-type', 'application/json');
          return fetch(`${url}${pathname}`, {
            ...init,
            headers,
            ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
          });
        },
      };
    },
    async close() {
      await http.close();
      await agent.stop();
      await platform.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
