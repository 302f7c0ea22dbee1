import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { sql } from 'kysely';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMcpServer, type McpSession } from '../../mcp-server/server.js';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { loadConfig } from '../../app/config.js';
import type { Role } from '../../core/context.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform, type Platform } from '../../app/platform.js';
import { CSRF_COOKIE, CSRF_HEADER } from '../../web-chat/auth.js';
import { MUTATION_EXEMPTIONS, ROUTES, type RouteDef } from '../../web-chat/routes/index.js';
import { startHttpServer, type RunningServer } from '../../app/http.js';
import { BOT_COMMANDS, VisionBot } from '../../web-chat/slack/bot.js';
import { SOCKET_EVENTS } from '../../web-chat/sockets.js';
import { mcpServicesOf, webServicesOf } from '../../app/wiring.js';

const PASSWORD = 'correct horse battery';
const SAMPLE_ID = 'fbk_matrix_1';

/**
 * Valid arguments for every tool that changes something, so a refusal can only come from the
 * approval gate. A new write or critical tool without an entry here fails the matrix.
 */
const ARGS: Record<string, Record<string, unknown>> = {
  import_dataset: { source: 'imports/matrix', name: 'matrix-ds' },
  split_dataset: { dataset: 'matrix-ds', train: 0.8, val: 0.1, test: 0.1 },
  export_dataset: { dataset: 'matrix-ds', format: 'yolo' },
  start_training: { dataset: 'matrix-ds', epochs: 1, backend: 'builtin' },
  cancel_training: { jobId: 'job_matrix' },
  promote_model: { modelVersion: 'det@1', stage: 'staging' },
  evaluate_model: { modelVersion: 'det@1', split: 'test' },
  start_rollout: { modelVersion: 'det@1', target: { tag: 'line-3' } },
  pause_rollout: { rolloutId: 'ro_matrix' },
  resume_rollout: { rolloutId: 'ro_matrix' },
  rollback_rollout: { rolloutId: 'ro_matrix', reason: 'matrix check' },
  review_feedback: { sampleId: SAMPLE_ID, decision: 'accept' },
  feedback_to_dataset: { dataset: 'matrix-ds' },
  set_retrain_policy: { model: 'det', minAcceptedSamples: 200 },
  check_retrain_policies: {},
  set_member_role: { email: 'matrix-person@example.test', role: 'operator' },
  create_project: { id: 'matrix-project', name: 'Matrix project' },
};

/** The request each tool-running route is called with: path parameters, and the body without an approval. */
const ROUTE_CALLS: Record<string, { url: string; body: Record<string, unknown> }> = {
  'POST /api/models/:ref/evaluate': { url: '/api/models/det@1/evaluate', body: { split: 'test' } },
  'POST /api/models/:ref/promote': { url: '/api/models/det@1/promote', body: { stage: 'staging' } },
  'POST /api/feedback/:id/review': { url: `/api/feedback/${SAMPLE_ID}/review`, body: { decision: 'accept' } },
};

/** The most exemptions of each kind the route table may hold; raising one is a security review decision. */
const EXEMPTION_BUDGET: Record<(typeof MUTATION_EXEMPTIONS)[number], number> = {
  'sign-in': 3,
  'own-credential': 4,
  'approval-request': 1,
  'device-upload-url': 1,
  'upload-staging': 3,
  'read-only': 1,
};

const keyOf = (r: RouteDef) => `${r.method.toUpperCase()} ${r.path}`;
const mutating = ROUTES.filter((r) => r.method !== 'get');

interface Client_ {
  cookie: string;
  fetch(pathname: string, init?: { method?: string; json?: unknown }): Promise<Response>;
}

describe('mutation matrix: every state change of every front end goes through runTool with an approval', () => {
  let dir: string;
  let platform: Platform;
  let http: RunningServer;
  const users = {} as Record<Role, string>;
  const clients = {} as Record<Role, Client_>;
  const sessions: McpSession[] = [];
  const sockets: Socket[] = [];

  const registry = () => webServicesOf(platform).tools.registry;
  const gatedTools = () =>
    registry()
      .list()
      .filter((t) => t.risk !== 'read' && t.authorizesItself !== true);

  /** A hash of every table a tool could change (sessions and token use times move on any request). */
  async function snapshot(): Promise<Record<string, string>> {
    const db = platform.infra.db.kysely;
    const tables = await sql<{
      name: string;
    }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(db);
    const out: Record<string, string> = {};
    for (const { name } of tables.rows) {
      if (name === 'sessions' || name === 'api_tokens') continue;
      const rows = await sql`select * from ${sql.table(name)}`.execute(db);
      out[name] = createHash('sha256').update(JSON.stringify(rows.rows)).digest('hex');
    }
    return out;
  }

  function changed(before: Record<string, string>, after: Record<string, string>): string[] {
    return Object.keys({ ...before, ...after }).filter((t) => before[t] !== after[t]);
  }

  async function login(email: string): Promise<Client_> {
    const res = await fetch(`${http.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
    const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0]!);
    const cookie = cookies.join('; ');
    const csrf = cookies.find((c) => c.startsWith(`${CSRF_COOKIE}=`))!.slice(CSRF_COOKIE.length + 1);
    return {
      cookie,
      fetch: (pathname, init = {}) =>
        fetch(`${http.url}${pathname}`, {
          method: init.method ?? 'GET',
          headers: {
            cookie,
            [CSRF_HEADER]: csrf,
            ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
        }),
    };
  }

  async function mcpClient(role: Role): Promise<Client> {
    const session = createMcpServer({
      services: mcpServicesOf(platform),
      principal: { userId: users[role], email: `${role}@example.test`, name: role, role, kind: 'user' },
      projectId: DEFAULT_PROJECT_ID,
    });
    sessions.push(session);
    const [a, b] = InMemoryTransport.createLinkedPair();
    await session.server.connect(a);
    const client = new Client({ name: 'matrix', version: '1.0.0' });
    await client.connect(b);
    return client;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'via-mutation-'));
    const config = loadConfig(
      {
        DATA_DIR: dir,
        LOG_LEVEL: 'silent',
        EMBEDDED_GPU_RUNNER: 'false',
        SIMULATED_DEVICES: '0',
        DEMO_DATASET: 'false',
      },
      dir,
    );
    platform = await createPlatform(config, silentLogger());
    await platform.prepare();
    // the production wiring: the same web services `visioninapp serve` uses
    http = await startHttpServer(platform, {
      host: '127.0.0.1',
      port: 0,
      web: { rateLimits: { login: 1000, api: 100_000 } },
    });
    for (const role of ['viewer', 'operator', 'approver', 'admin'] as const) {
      users[role] = (
        await platform.accounts.createUser({
          email: `${role}@example.test`,
          name: role,
          password: PASSWORD,
          role,
          projectId: DEFAULT_PROJECT_ID,
        })
      ).id;
      clients[role] = await login(`${role}@example.test`);
    }
    const now = Date.now();
    await platform.infra.db.kysely
      .insertInto('feedback_samples')
      .values({
        id: SAMPLE_ID,
        project_id: DEFAULT_PROJECT_ID,
        device_id: 'dev_matrix',
        model_version_id: null,
        model_name: null,
        image_key: 'feedback/dev_matrix/2026-01-01/a.jpg',
        sha256: '0'.repeat(64),
        width: 64,
        height: 64,
        reason: 'low_confidence',
        predictions: JSON.stringify([{ box: [1, 1, 10, 10], classId: 0, className: 'helmet', score: 0.3 }]),
        top_confidence: 0.3,
        captured_at: now,
        received_at: now,
        status: 'pending',
        boxes: null,
        reject_reason: null,
        reviewed_by: null,
        reviewed_at: null,
        used_in: null,
        used_at: null,
      })
      .execute();
  }, 60_000);

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    for (const s of sessions) await s.close();
    await http?.close();
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every state-changing route declares the tool it runs, the agent, or a justified exemption within budget', () => {
    const problems: string[] = [];
    const names = new Set(registry().names());
    const spent: Record<string, number> = {};
    for (const r of ROUTES) {
      const m = r.mutation;
      if (r.method === 'get') {
        if (m !== undefined)
          problems.push(`${keyOf(r)}: a GET route must change nothing, yet declares ${JSON.stringify(m)}`);
        continue;
      }
      if (m === undefined) problems.push(`${keyOf(r)}: declares no mutation (tool, agent or exemption)`);
      else if ('tool' in m) {
        if (m.tool === ':name' ? !r.path.includes(':name') : !names.has(m.tool))
          problems.push(`${keyOf(r)}: tool "${m.tool}" is not in the registry`);
      } else if ('exempt' in m) {
        spent[m.exempt] = (spent[m.exempt] ?? 0) + 1;
        if (m.why.length < 40)
          problems.push(`${keyOf(r)}: exemption "${m.exempt}" needs a real justification, not "${m.why}"`);
        if ((m.exempt === 'sign-in' || m.exempt === 'own-credential') && r.tag !== 'auth')
          problems.push(`${keyOf(r)}: only account routes may be "${m.exempt}"`);
      }
    }
    for (const [kind, n] of Object.entries(spent)) {
      if (n > EXEMPTION_BUDGET[kind as keyof typeof EXEMPTION_BUDGET])
        problems.push(
          `${n} "${kind}" exemptions, more than the budget of ${EXEMPTION_BUDGET[kind as keyof typeof EXEMPTION_BUDGET]}`,
        );
    }
    expect(problems).toEqual([]);
    expect(mutating.length).toBeGreaterThanOrEqual(15);
  });

  it('has valid arguments for every write and critical tool (a new tool must be added here)', () => {
    const missing = gatedTools()
      .map((t) => t.name)
      .filter((n) => ARGS[n] === undefined);
    expect(missing).toEqual([]);
    for (const [name, args] of Object.entries(ARGS))
      expect(() => registry().parseInput(name, args), name).not.toThrow();
  });

  it('every route that runs a write or critical tool refuses an operator without an approval (409 approval_required) and changes nothing', async () => {
    const failures: string[] = [];
    const calls: Array<[string, string, Record<string, unknown>]> = [];
    for (const r of mutating) {
      const m = r.mutation;
      if (m === undefined || !('tool' in m) || m.tool === ':name') continue;
      const tool = registry().get(m.tool);
      if (tool.risk === 'read' || tool.authorizesItself === true) continue;
      if (ROUTE_CALLS[keyOf(r)] === undefined) failures.push(`${keyOf(r)}: add a request to ROUTE_CALLS`);
    }
    // called whatever they declare: a route that stops declaring its tool must still be refused
    for (const [label, call] of Object.entries(ROUTE_CALLS)) calls.push([label, call.url, call.body]);
    // the generic tool route, with every write and critical tool of the registry
    for (const t of gatedTools())
      calls.push([`POST /api/tools/${t.name}`, `/api/tools/${t.name}`, { args: ARGS[t.name] ?? {} }]);
    for (const [label, url, body] of calls) {
      const before = await snapshot();
      const res = await clients.operator.fetch(url, { method: 'POST', json: body });
      const answer = (await res.json()) as { error?: { code: string } };
      const diff = changed(before, await snapshot());
      if (res.status !== 409 || answer.error?.code !== 'approval_required')
        failures.push(`${label}: ${res.status} ${JSON.stringify(answer).slice(0, 160)}`);
      if (diff.length > 0) failures.push(`${label}: changed ${diff.join(', ')} without an approval`);
    }
    expect(failures).toEqual([]);
    expect(calls.length).toBeGreaterThanOrEqual(gatedTools().length + 3);
  }, 60_000);

  it('a feedback review runs only with an approval bound to its arguments, through review_feedback, and is audited', async () => {
    const op = clients.operator;
    const args = { sampleId: SAMPLE_ID, decision: 'accept' };
    const approval = (await (
      await op.fetch('/api/approvals', {
        method: 'POST',
        json: { tool: 'review_feedback', args, reason: 'matrix' },
      })
    ).json()) as { id: string };
    // an approval of other arguments does not cover this call
    const other = (await (
      await op.fetch('/api/approvals', {
        method: 'POST',
        json: {
          tool: 'review_feedback',
          args: { sampleId: SAMPLE_ID, decision: 'reject', reason: 'blurry' },
          reason: 'matrix',
        },
      })
    ).json()) as { id: string };
    for (const a of [approval.id, other.id])
      expect(
        (await op.fetch(`/api/approvals/${a}/decide`, { method: 'POST', json: { decision: 'approve' } }))
          .status,
      ).toBe(200);
    const wrong = await op.fetch(`/api/feedback/${SAMPLE_ID}/review`, {
      method: 'POST',
      json: { decision: 'accept', approvalId: other.id },
    });
    expect(wrong.status).toBeGreaterThanOrEqual(400);
    expect(
      (
        await platform.infra.db.kysely
          .selectFrom('feedback_samples')
          .select('status')
          .where('id', '=', SAMPLE_ID)
          .executeTakeFirstOrThrow()
      ).status,
    ).toBe('pending');

    const res = await op.fetch(`/api/feedback/${SAMPLE_ID}/review`, {
      method: 'POST',
      json: { decision: 'accept', approvalId: approval.id },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sampleId: SAMPLE_ID, status: 'accepted' });
    const { entries } = await platform.audit.query({
      projectId: DEFAULT_PROJECT_ID,
      tool: 'review_feedback',
    });
    expect(entries.filter((e) => e.approvalId === approval.id).map((e) => e.action)).toEqual(
      expect.arrayContaining(['tool.started', 'tool.finished']),
    );
    expect(
      (
        await platform.approvals.get(
          {
            user: {
              userId: users.operator,
              email: 'operator@example.test',
              name: 'operator',
              role: 'operator',
              kind: 'user',
            },
            projectId: DEFAULT_PROJECT_ID,
            requestId: 'req_matrix',
            log: silentLogger(),
          },
          approval.id,
        )
      ).status,
    ).toBe('executed');
  });

  it('every MCP tool that changes something only asks for an approval when called, and runs nothing', async () => {
    const client = await mcpClient('operator');
    const listed = (await client.listTools()).tools.map((t) => t.name);
    const registryNames = new Set(registry().names());
    // MCP tools beyond the registry: waiting for an approval then running it through runTool, and the agent
    expect(listed.filter((n) => !registryNames.has(n)).sort()).toEqual(['approvals_wait', 'ask_assistant']);
    const failures: string[] = [];
    for (const t of gatedTools()) {
      if (!listed.includes(t.name)) continue;
      const before = await snapshot();
      const result = await client.callTool({ name: t.name, arguments: ARGS[t.name] ?? {} });
      const text = (result.content as Array<{ text?: string }>)[0]?.text ?? '';
      // the approval request itself (its row, its audit entry, its search document) is all that may appear
      const diff = changed(before, await snapshot()).filter(
        (table) => table !== 'approvals' && table !== 'search_outbox' && !table.startsWith('audit'),
      );
      if (!text.startsWith('pending approval')) failures.push(`${t.name}: ${text.slice(0, 160)}`);
      if (diff.length > 0) failures.push(`${t.name}: changed ${diff.join(', ')} before any approval`);
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('every socket event changes nothing or hands the request to the agent', () => {
    for (const [name, def] of Object.entries(SOCKET_EVENTS))
      expect(['nothing', 'agent'], name).toContain(def.changes);
  });

  it('every bot command is declared; approving from the chat runs decide_approval through runTool', async () => {
    const s = webServicesOf(platform);
    const bot = new VisionBot(
      s,
      silentLogger(),
      new Map([
        ['U_OP', 'operator@example.test'],
        ['U_AP', 'approver@example.test'],
      ]),
    );
    const chat = (userId: string) => ({ platform: 'slack' as const, teamId: 'T1', userId, userName: userId });
    const help = (await bot.command(chat('U_OP'), 'help')).text;
    const verbs = [...help.matchAll(/`\/vision (\w+)/g)].map((m) => m[1]!);
    expect(verbs.length).toBeGreaterThan(3);
    for (const verb of verbs)
      expect(Object.keys(BOT_COMMANDS), `"/vision ${verb}" is not declared in BOT_COMMANDS`).toContain(verb);
    for (const [verb, what] of Object.entries(BOT_COMMANDS)) {
      if (typeof what === 'object' && 'tool' in what) expect(registry().names(), verb).toContain(what.tool);
      if (typeof what === 'object' && 'exempt' in what)
        expect(MUTATION_EXEMPTIONS, verb).toContain(what.exempt);
    }
    const op = clients.operator;
    const asked = (await (
      await op.fetch('/api/approvals', {
        method: 'POST',
        json: { tool: 'cancel_training', args: ARGS.cancel_training, reason: 'matrix bot' },
      })
    ).json()) as { id: string };
    const reply = await bot.command(chat('U_AP'), `approve ${asked.id}`);
    expect(reply.response_type).toBe('in_channel');
    const { entries } = await platform.audit.query({
      projectId: DEFAULT_PROJECT_ID,
      tool: 'decide_approval',
      action: 'tool.finished',
    });
    expect(entries.some((e) => JSON.stringify(e.data).includes(asked.id))).toBe(true);
  });

  it('the agent (REST and socket) proposes changing steps as approvals; no write or critical tool ever started without one', async () => {
    for (const message of [
      'promote det@1 to production',
      'cancel training job job_matrix',
      'list datasets',
    ]) {
      const res = await clients.operator.fetch('/api/conversations', { method: 'POST', json: { message } });
      expect(res.status, message).toBeLessThan(300);
    }
    const socket = connect(http.url, {
      transports: ['websocket'],
      extraHeaders: { cookie: clients.operator.cookie },
      reconnection: false,
      forceNew: true,
    });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    const ack = (await socket.emitWithAck('chat:send', { message: 'rollback rollout ro_matrix' })) as {
      ok: boolean;
    };
    expect(ack.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));

    // the invariant over everything this file did through every front end
    const gated = new Set(gatedTools().map((t) => t.name));
    const { entries } = await platform.audit.query({
      projectId: DEFAULT_PROJECT_ID,
      action: 'tool.started',
      limit: 500,
    });
    const unapproved = entries.filter(
      (e) => typeof e.tool === 'string' && gated.has(e.tool) && !e.approvalId,
    );
    expect(unapproved).toEqual([]);
    expect(entries.some((e) => e.tool === 'review_feedback')).toBe(true);
  }, 60_000);
});
