import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemPrincipal } from '../../core/context.js';
import { startTestServer, type TestServer } from '../server.fixtures.js';
import { slackSignature, slackSignatureProblem } from './signature.js';

// Slack's documented example ("Verifying requests from Slack").
const DOC_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const DOC_TIMESTAMP = '1531420618';
const DOC_BODY =
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const DOC_SIGNATURE = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
const SECRET = 'test-signing-secret-0123456789';

describe('Slack v0 signature', () => {
  const at = Number(DOC_TIMESTAMP) * 1000;
  const check = (over: Partial<Parameters<typeof slackSignatureProblem>[0]> = {}) =>
    slackSignatureProblem({
      secret: DOC_SECRET,
      timestamp: DOC_TIMESTAMP,
      signature: DOC_SIGNATURE,
      rawBody: DOC_BODY,
      nowMs: at + 30_000,
      ...over,
    });

  it("accepts Slack's documented example within the replay window", () => {
    expect(slackSignature(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY)).toBe(DOC_SIGNATURE);
    expect(check()).toBeUndefined();
    expect(check({ nowMs: at - 299_000 })).toBeUndefined();
  });

  it('refuses a replay after 5 minutes, a changed body, another secret, a bad or missing header', () => {
    expect(check({ nowMs: at + 301_000 })).toMatch(/5-minute window/);
    expect(check({ rawBody: DOC_BODY.replace('roadrunner', 'coyote') })).toBe('signature does not match');
    expect(check({ secret: `${DOC_SECRET}x` })).toBe('signature does not match');
    expect(check({ signature: 'v0=abc' })).toBe('signature does not match');
    expect(check({ signature: undefined })).toMatch(/missing/);
    expect(check({ timestamp: '12ab' })).toMatch(/malformed/);
  });
});

describe('Slack and Mattermost bot through the real app', () => {
  let t: TestServer;
  let off: TestServer;
  const posts: Array<{
    url: string;
    body: { text: string; blocks?: unknown[]; replace_original?: boolean };
  }> = [];
  const recorder = (async (url: string | URL | Request, init?: RequestInit) => {
    posts.push({ url: String(url), body: JSON.parse(String(init?.body)) });
    return new Response('ok');
  }) as typeof fetch;

  beforeAll(async () => {
    t = await startTestServer({
      env: {
        SLACK_SIGNING_SECRET: SECRET,
        SLACK_WEBHOOK_URL: 'https://hooks.example.test/services/T/B/X',
        SLACK_USER_MAP:
          'UAPPROVER=approver@example.test,UVIEWER=viewer@example.test,UOPERATOR=operator@example.test',
        MATTERMOST_COMMAND_TOKEN: 'mattermost-token-123',
      },
      web: { slack: { fetch: recorder } },
    });
    off = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
    await off?.close();
  });

  const signed = (path: string, body: string, opts: { timestamp?: number; signature?: string } = {}) => {
    const ts = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
    return fetch(`${t.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': opts.signature ?? slackSignature(SECRET, ts, body),
      },
      body,
    });
  };
  const command = async (user: string, text: string) => {
    const res = await signed(
      '/integrations/slack/commands',
      new URLSearchParams({
        team_id: 'T1',
        user_id: user,
        user_name: user.toLowerCase(),
        command: '/vision',
        text,
        response_url: 'https://hooks.example.test/cmd',
      }).toString(),
    );
    expect(res.status).toBe(200);
    return (await res.json()) as {
      response_type: string;
      text: string;
      blocks?: Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>;
    };
  };
  const criticalRequest = async () => {
    const operator = await t.login('operator');
    const res = await operator.fetch('/api/approvals', {
      method: 'POST',
      json: {
        tool: 'start_rollout',
        args: { modelVersion: 'mv_helmets_3', target: { tag: 'line-3' } },
        reason: 'deploy to line 3',
      },
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };

  it('is off without SLACK_SIGNING_SECRET and refuses bad or stale signatures', async () => {
    expect(
      (
        await fetch(`${off.url}/integrations/slack/commands`, {
          method: 'POST',
          body: 'x=1',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await fetch(`${off.url}/integrations/mattermost/commands`, {
          method: 'POST',
          body: 'x=1',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
      ).status,
    ).toBe(404);
    const body = 'user_id=UAPPROVER&text=status';
    expect((await signed('/integrations/slack/commands', body, { signature: 'v0=deadbeef' })).status).toBe(
      401,
    );
    expect(
      (await signed('/integrations/slack/commands', body, { timestamp: Math.floor(Date.now() / 1000) - 600 }))
        .status,
    ).toBe(401);
    expect((await signed('/integrations/slack/commands', body)).status).toBe(200);
  });

  it('posts pending critical approvals to the webhook with buttons, and lists them with /vision approvals', async () => {
    const id = await criticalRequest();
    const hook = posts.find(
      (p) => p.url.startsWith('https://hooks.example.test/services') && JSON.stringify(p.body).includes(id),
    );
    expect(hook).toBeDefined();
    expect(JSON.stringify(hook!.body.blocks)).toContain('"action_id":"approve"');
    const list = await command('UAPPROVER', 'approvals');
    const actions = list.blocks!.find((b) => b.type === 'actions' && b.elements!.some((e) => e.value === id));
    expect(actions!.elements!.map((e) => e.action_id)).toEqual(['approve', 'reject']);
  });

  it("posts every step of a plan the platform proposed (a retrain), not only critical ones; not an operator's own write step", async () => {
    const system = {
      user: systemPrincipal(),
      projectId: 'default',
      requestId: 'retrain',
      log: t.platform.log,
    };
    const args = { dataset: 'helmets-demo', sampleIds: ['fb_1'] };
    const proposed = await t.platform.approvals.request(system, {
      tool: 'feedback_to_dataset',
      args,
      risk: 'write',
      reason: 'add the 1 accepted feedback sample(s) to helmets-demo as a new version',
    });
    const operator = await t.login('operator');
    const ownRes = await operator.fetch('/api/approvals', {
      method: 'POST',
      json: { tool: 'feedback_to_dataset', args: { ...args, sampleIds: ['fb_2'] }, reason: 'mine' },
    });
    expect(ownRes.status, await ownRes.clone().text()).toBe(201);
    const own = (await ownRes.json()) as { id: string };
    const hooked = (id: string) =>
      posts.some(
        (p) => p.url.startsWith('https://hooks.example.test/services') && JSON.stringify(p.body).includes(id),
      );
    await vi.waitFor(() => expect(hooked(proposed.id)).toBe(true));
    expect(own.id).not.toBe(proposed.id);
    expect(hooked(own.id)).toBe(false);
  });

  it('refuses unmapped and under-privileged users clearly; approving twice is harmless', async () => {
    const id = await criticalRequest();
    expect((await command('UNOBODY', `approve ${id}`)).text).toMatch(/not linked.*\/vision link/);
    expect((await command('UVIEWER', `approve ${id}`)).text).toMatch(/^Refused: .*viewers never approve/);
    expect((await command('UOPERATOR', `approve ${id}`)).text).toMatch(
      /^Refused: .*critical step needs the approver role/,
    );
    const first = await command('UAPPROVER', `approve ${id}`);
    expect(first.text).toContain('(approved)');
    const second = await command('UAPPROVER', `approve ${id}`);
    expect(second.text).toContain('(approved)');
    expect((await command('UAPPROVER', `reject ${id} too late`)).text).toContain('(approved)');
    const approver = await t.login('approver');
    const view = (await (await approver.fetch(`/api/approvals/${id}`)).json()) as {
      status: string;
      decision: { by: { userId: string } };
    };
    expect(view.status).toBe('approved');
    expect(view.decision.by.userId).toBe(t.users.approver.id);
  });

  it('rejects with a reason, answers status and help', async () => {
    const id = await criticalRequest();
    expect((await command('UAPPROVER', `reject ${id}`)).text).toMatch(/Say why/);
    expect((await command('UAPPROVER', `reject ${id} wrong line`)).text).toContain('(rejected)');
    expect((await command('UAPPROVER', 'status')).text).toMatch(/Approvals waiting: \d+/);
    expect((await command('UAPPROVER', 'dance')).text).toMatch(/Unknown command/);
    expect((await command('UAPPROVER', 'rollout')).text).toMatch(/Say which rollout/);
  });

  it('Approve button (block_actions) decides and replaces the original message through response_url', async () => {
    const id = await criticalRequest();
    const payload = {
      type: 'block_actions',
      user: { id: 'UAPPROVER', username: 'approver' },
      team: { id: 'T1' },
      response_url: 'https://hooks.example.test/actions/1',
      actions: [{ action_id: 'approve', value: id }],
    };
    const res = await signed(
      '/integrations/slack/interactions',
      new URLSearchParams({ payload: JSON.stringify(payload) }).toString(),
    );
    expect(res.status).toBe(200);
    const update = posts.filter((p) => p.url === 'https://hooks.example.test/actions/1').at(-1)!;
    expect(update.body.replace_original).toBe(true);
    expect(update.body.text).toContain('(approved)');
    expect(JSON.stringify(update.body.blocks)).not.toContain('"action_id"');
    const viewerClick = {
      ...payload,
      user: { id: 'UVIEWER' },
      response_url: 'https://hooks.example.test/actions/2',
    };
    await signed(
      '/integrations/slack/interactions',
      new URLSearchParams({ payload: JSON.stringify(viewerClick) }).toString(),
    );
    expect(posts.filter((p) => p.url === 'https://hooks.example.test/actions/2').at(-1)!.body).toMatchObject({
      replace_original: false,
      text: expect.stringMatching(/^Refused/),
    });
    expect((await signed('/integrations/slack/interactions', 'payload=%7Bnot-json')).status).toBe(400);
  });

  it('links an unmapped chat user with /vision link and the signed-in web app', async () => {
    const reply = await command('UNEW', 'link');
    const code = /#link\/([\w-]+)/.exec(reply.text)![1]!;
    const approver = await t.login('approver');
    expect((await approver.fetch(`/api/chat-links/pending/${code}`)).status).toBe(200);
    expect(
      (await approver.fetch('/api/chat-links', { method: 'POST', json: { code, confirm: true } })).status,
    ).toBe(201);
    expect(
      (await approver.fetch('/api/chat-links', { method: 'POST', json: { code, confirm: true } })).status,
    ).toBe(404);
    expect((await command('UNEW', 'status')).text).toMatch(/Approvals waiting/);
  });

  it('answers a question with Block Kit sections and fields, names not ids, in the language asked', async () => {
    type Section = { type: string; text?: { text: string }; fields?: Array<{ type: string; text: string }> };
    const en = await command('UOPERATOR', 'ask list datasets');
    expect(en.response_type).toBe('in_channel');
    expect(en.text).toContain('Found 2 datasets:');
    const blocks = en.blocks as Section[];
    expect(blocks.map((b) => [b.type, b.text?.text, b.fields?.map((f) => f.text)])).toEqual([
      ['section', '*Found 2 datasets:*', undefined],
      ['section', '*helmets-demo*', ['200 images']],
      ['section', '*helmets-v2*', ['1,200 images']],
    ]);
    expect(blocks.every((b) => b.fields === undefined || b.fields.every((f) => f.type === 'mrkdwn'))).toBe(
      true,
    );

    const devices = (await command('UOPERATOR', 'ask list devices')).blocks as Section[];
    expect(devices.slice(1).map((b) => b.text?.text)).toEqual([
      '*jetson-l3-a*',
      '*jetson-l3-b*',
      '*jetson-l2-a*',
    ]);
    expect(JSON.stringify(devices)).not.toContain('dev_');

    const ko = (await command('UOPERATOR', 'ask 데이터셋 목록 보여줘')).blocks as Section[];
    expect(ko.map((b) => [b.text?.text, b.fields?.map((f) => f.text)])).toEqual([
      ['*데이터셋 2개를 찾았습니다:*', undefined],
      ['*helmets-demo*', ['이미지 200장']],
      ['*helmets-v2*', ['이미지 1,200장']],
    ]);
  });

  it('serves Mattermost slash commands verified by token', async () => {
    const mm = (token: string, text: string) =>
      fetch(`${t.url}/integrations/mattermost/commands`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token,
          team_id: 'mm',
          user_id: 'UAPPROVER',
          user_name: 'approver',
          command: '/vision',
          text,
        }).toString(),
      });
    expect((await mm('wrong-token-xyz', 'status')).status).toBe(401);
    const id = await criticalRequest();
    const res = await mm('mattermost-token-123', `approve ${id}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { text: string }).text).toContain('(approved)');
  });
});
