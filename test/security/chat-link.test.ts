import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatLinkService, DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { loadConfig } from '../../app/config.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform } from '../../app/platform.js';
import { CSRF_COOKIE, CSRF_HEADER } from '../../web-chat/auth.js';
import { startHttpServer } from '../../app/http.js';
import { slackSignature } from '../../web-chat/slack/signature.js';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../../web-chat/server.fixtures.js';
import { freePort } from '../services.fixtures.js';

// Issue 13 item 3: opening /#link/CODE linked the code's chat user to whoever opened the page, with no
// confirmation; an unlinked chat user tricked an admin into opening it and then approved as the admin.
// Links lived in the cache (gone on restart, evictable) and could not be listed or undone.
const SECRET = 'chat-link-signing-secret-0123456789';

describe('chat-account links need an explicit confirmation and are kept in the database', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({ env: { SLACK_SIGNING_SECRET: SECRET, APPROVAL_STRICT: 'true' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const command = async (userId: string, text: string) => {
    const body = new URLSearchParams({
      team_id: 'T1',
      team_domain: 'acme-works',
      user_id: userId,
      user_name: userId.toLowerCase(),
      command: '/vision',
      text,
    }).toString();
    const ts = String(Math.floor(Date.now() / 1000));
    const res = await fetch(`${t.url}/integrations/slack/commands`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': slackSignature(SECRET, ts, body),
      },
      body,
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { text: string }).text;
  };
  const codeOf = (reply: string) => /#link\/([\w-]+)/.exec(reply)![1]!;
  const criticalRequest = async () => {
    const operator = await t.login('operator');
    const res = await operator.fetch('/api/approvals', {
      method: 'POST',
      json: {
        tool: 'start_rollout',
        args: { modelVersion: 'mv_x_1', target: { tag: 'line-3' } },
        reason: 'deploy',
      },
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };

  it('opening a link code links nothing: the page learns who asks, and the old one-step POST is refused', async () => {
    const reply = await command('UMALLORY', 'link');
    expect(reply).toMatch(/within 10 minutes/);
    const code = codeOf(reply);
    const admin = await t.login('admin');

    // what the old page sent as soon as /#link/CODE was opened
    const blind = await admin.fetch('/api/chat-links', { method: 'POST', json: { code } });
    expect(blind.status).toBe(400);
    expect(await blind.text()).toMatch(/confirm/);

    const pending = await admin.fetch(`/api/chat-links/pending/${code}`);
    expect(pending.status).toBe(200);
    expect(await pending.json()).toMatchObject({
      platform: 'slack',
      teamId: 'T1',
      teamName: 'acme-works',
      chatUserId: 'UMALLORY',
      chatUserName: 'umallory',
    });

    const id = await criticalRequest();
    expect(await command('UMALLORY', `approve ${id}`)).toMatch(/not linked/);
    expect(((await (await admin.fetch('/api/chat-links')).json()) as { links: unknown[] }).links).toEqual([]);
    expect(
      (await t.platform.audit.query({ projectId: DEFAULT_PROJECT_ID, action: 'chat_link.linked' })).total,
    ).toBe(0);
  });

  it('a code works once: a second confirmation, by the same or another person, is refused', async () => {
    const code = codeOf(await command('UAPPROVER2', 'link'));
    const approver = await t.login('approver');
    const admin = await t.login('admin');
    const first = await approver.fetch('/api/chat-links', { method: 'POST', json: { code, confirm: true } });
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({
      platform: 'slack',
      chatUserId: 'UAPPROVER2',
      userId: t.users.approver.id,
    });

    expect(
      (await approver.fetch('/api/chat-links', { method: 'POST', json: { code, confirm: true } })).status,
    ).toBe(404);
    expect(
      (await admin.fetch('/api/chat-links', { method: 'POST', json: { code, confirm: true } })).status,
    ).toBe(404);
    expect((await admin.fetch(`/api/chat-links/pending/${code}`)).status).toBe(404);
    expect(await t.platform.chatLinks.resolve('slack', 'T1', 'UAPPROVER2')).toBe(t.users.approver.id);
    expect(await command('UAPPROVER2', 'status')).toMatch(/Approvals waiting/);
  });

  it('an expired code is refused, and a newer code replaces an older one', async () => {
    const stale = codeOf(await command('ULATE', 'link'));
    const admin = await t.login('admin');
    // eleven minutes later
    await t.platform.infra.db.kysely
      .updateTable('chat_link_codes')
      .set({ expires_at: Date.now() - 60_000 })
      .where('chat_user_id', '=', 'ULATE')
      .execute();
    expect((await admin.fetch(`/api/chat-links/pending/${stale}`)).status).toBe(404);
    expect(
      (await admin.fetch('/api/chat-links', { method: 'POST', json: { code: stale, confirm: true } })).status,
    ).toBe(404);

    const older = codeOf(await command('ULATE', 'link'));
    const newer = codeOf(await command('ULATE', 'link'));
    expect(
      (await admin.fetch('/api/chat-links', { method: 'POST', json: { code: older, confirm: true } })).status,
    ).toBe(404);
    expect((await admin.fetch(`/api/chat-links/pending/${newer}`)).status).toBe(200);
    expect(await t.platform.chatLinks.resolve('slack', 'T1', 'ULATE')).toBeUndefined();
  });

  it('codes expire after the configured minutes (service clock)', async () => {
    let clock = Date.now();
    const sut = new ChatLinkService({
      db: t.platform.infra.db,
      audit: t.platform.audit,
      log: silentLogger(),
      codeTtlMs: 5 * 60_000,
      now: () => clock,
    });
    const { code, expiresAt } = await sut.createCode({
      platform: 'mattermost',
      teamId: 'mm',
      teamName: 'ops',
      userId: 'UCLOCK',
      userName: 'clock',
    });
    expect(expiresAt).toBe(clock + 5 * 60_000);
    clock += 4 * 60_000;
    expect(await sut.describeCode(code)).toMatchObject({ chatUserId: 'UCLOCK', teamName: 'ops' });
    clock += 60_001;
    await expect(sut.describeCode(code)).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringContaining('/vision link'),
    });
    await expect(
      sut.confirm({ userId: t.users.admin.id, kind: 'user', projectId: DEFAULT_PROJECT_ID }, code),
    ).rejects.toMatchObject({ code: 'not_found' });
    await expect(
      sut.confirm({ userId: t.users.admin.id, kind: 'token', projectId: DEFAULT_PROJECT_ID }, code),
    ).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('lists your own links, unlinks them (only yours), and audits link and unlink', async () => {
    const code = codeOf(await command('UOPS', 'link'));
    const operator = await t.login('operator');
    const admin = await t.login('admin');
    const linked = (await (
      await operator.fetch('/api/chat-links', { method: 'POST', json: { code, confirm: true } })
    ).json()) as { id: string };

    const mine = (await (await operator.fetch('/api/chat-links')).json()) as {
      links: Array<{ id: string; chatUserId: string; teamName: string }>;
    };
    expect(mine.links).toEqual([
      expect.objectContaining({ id: linked.id, chatUserId: 'UOPS', teamName: 'acme-works' }),
    ]);
    expect(((await (await admin.fetch('/api/chat-links')).json()) as { links: unknown[] }).links).toEqual([]);

    // someone else's link is not theirs to remove, an admin's included
    expect((await admin.fetch(`/api/chat-links/${linked.id}`, { method: 'DELETE' })).status).toBe(404);
    expect(await command('UOPS', 'status')).toMatch(/Approvals waiting/);

    expect((await operator.fetch(`/api/chat-links/${linked.id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await command('UOPS', 'status')).toMatch(/not linked/);
    expect(((await (await operator.fetch('/api/chat-links')).json()) as { links: unknown[] }).links).toEqual(
      [],
    );

    const audit = await t.platform.audit.query({
      projectId: DEFAULT_PROJECT_ID,
      userId: t.users.operator.id,
    });
    const entries = audit.entries.filter((e) => e.action.startsWith('chat_link.'));
    expect(entries.map((e) => [e.action, e.actor.id, e.data.linkId, e.data.chatUserId])).toEqual([
      ['chat_link.linked', t.users.operator.id, linked.id, 'UOPS'],
      ['chat_link.unlinked', t.users.operator.id, linked.id, 'UOPS'],
    ]);
    expect((await t.platform.audit.verify(DEFAULT_PROJECT_ID)).ok).toBe(true);
  });
});

describe('chat-account links survive a platform restart', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vlinkrestart-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = {
    DATA_DIR: dir,
    LOG_LEVEL: 'silent',
    EMBEDDED_GPU_RUNNER: 'false',
    SIMULATED_DEVICES: '0',
    DEMO_DATASET: 'false',
    SLACK_SIGNING_SECRET: SECRET,
  };

  /** The real app on `dir`: a Slack command and a signed-in person's REST call. */
  async function start() {
    const config = loadConfig({ ...env, PORT: String(await freePort()) }, dir);
    const platform = await createPlatform(config, silentLogger());
    await platform.prepare();
    const http = await startHttpServer(platform, { host: '127.0.0.1' });
    const slack = async (text: string) => {
      const body = new URLSearchParams({
        team_id: 'T9',
        team_domain: 'acme',
        user_id: 'URESTART',
        user_name: 'restart',
        command: '/vision',
        text,
      }).toString();
      const ts = String(Math.floor(Date.now() / 1000));
      const res = await fetch(`${http.url}/integrations/slack/commands`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-slack-request-timestamp': ts,
          'x-slack-signature': slackSignature(SECRET, ts, body),
        },
        body,
      });
      return ((await res.json()) as { text: string }).text;
    };
    const close = async () => {
      await http.close();
      await platform.close();
    };
    return { platform, http, slack, close };
  }

  it('a confirmed link still resolves after the platform is closed and started again on the same database', async () => {
    const first = await start();
    try {
      await first.platform.accounts.createUser({
        email: 'linked@example.test',
        name: 'Linked',
        password: TEST_PASSWORD,
        role: 'approver',
        projectId: DEFAULT_PROJECT_ID,
      });
      const login = await fetch(`${first.http.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'linked@example.test', password: TEST_PASSWORD }),
      });
      const cookies = login.headers.getSetCookie().map((c) => c.split(';')[0]!);
      const csrf = cookies.find((c) => c.startsWith(`${CSRF_COOKIE}=`))!.slice(CSRF_COOKIE.length + 1);
      const code = /#link\/([\w-]+)/.exec(await first.slack('link'))![1]!;
      const confirmed = await fetch(`${first.http.url}/api/chat-links`, {
        method: 'POST',
        headers: { cookie: cookies.join('; '), [CSRF_HEADER]: csrf, 'content-type': 'application/json' },
        body: JSON.stringify({ code, confirm: true }),
      });
      expect(confirmed.ok).toBe(true);
      expect(await first.slack('status')).toMatch(/Approvals waiting/);
    } finally {
      await first.close();
    }

    const second = await start();
    try {
      expect(await second.slack('status')).toMatch(/Approvals waiting/);
    } finally {
      await second.close();
    }
  }, 60_000);
});
