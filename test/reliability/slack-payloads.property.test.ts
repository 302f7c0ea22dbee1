import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slackSignature } from '../../web-chat/slack/signature.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';

const SECRET = 'slack-signing-secret-for-fuzzing';

const field = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '',
    'T123',
    'U123',
    'approve',
    'reject apr_x',
    'train on helmets-demo',
    '\u0000',
    '\ud800',
    '%ZZ',
    'a'.repeat(5000),
  ),
);
const commandForm = fc
  .dictionary(
    fc.oneof(
      fc.constantFrom('team_id', 'user_id', 'user_name', 'text', 'command', 'response_url_x', 'trigger_id'),
      fc.string({ maxLength: 8 }),
    ),
    field,
    { maxKeys: 7 },
  )
  .map((d) => new URLSearchParams(d).toString());
const interaction = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record(
    {
      type: fc.oneof(fc.constant('block_actions'), fc.string({ maxLength: 10 })),
      user: fc.oneof(
        fc.record({ id: field, username: field, team_id: field }, { requiredKeys: [] }),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      team: fc.oneof(fc.record({ id: field }), fc.constant(null)),
      actions: fc.array(
        fc.oneof(
          fc.record(
            { action_id: fc.oneof(field, fc.constantFrom('approve', 'reject', 'decide')), value: field },
            { requiredKeys: [] },
          ),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: [] },
  ),
);
const interactionForm = fc.oneof(
  interaction.map((p) => new URLSearchParams({ payload: JSON.stringify(p) }).toString()),
  fc.string({ maxLength: 60 }).map((s) => new URLSearchParams({ payload: s }).toString()),
  fc.string({ maxLength: 60 }),
);

describe('Slack payloads under random input', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ env: { SLACK_SIGNING_SECRET: SECRET } });
  }, 60_000);

  afterAll(async () => {
    await server.close();
  });

  async function post(pathname: string, body: string, signed: boolean): Promise<Response> {
    const ts = String(Math.floor(Date.now() / 1000));
    return fetch(`${server.url}${pathname}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': signed ? slackSignature(SECRET, ts, body) : `v0=${'0'.repeat(64)}`,
      },
      body,
    });
  }

  it('signed random slash commands and interactions get a reply or a clear 4xx, never a server error', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/integrations/slack/commands', '/integrations/slack/interactions'),
        fc.oneof(commandForm, interactionForm),
        async (pathname, body) => {
          const res = await post(pathname, body, true);
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(
            res.status,
            `${pathname} ${body.slice(0, 200)} → ${res.status} ${text.slice(0, 200)}`,
          ).toBeLessThan(500);
          expect(text).not.toMatch(/\n\s+at /);
        },
      ),
      { numRuns: 120 },
    );
    // the payloads reached the bot: most answered 200 or a validation 400, not a rate limit
    expect(
      (statuses.get(200) ?? 0) + (statuses.get(400) ?? 0),
      JSON.stringify([...statuses]),
    ).toBeGreaterThan(100);
    expect(statuses.get(200) ?? 0, JSON.stringify([...statuses])).toBeGreaterThan(0);
  }, 60_000);

  it('unsigned random payloads are refused with 401 and never reach the bot', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/integrations/slack/commands', '/integrations/slack/interactions'),
        fc.oneof(commandForm, interactionForm),
        async (pathname, body) => {
          const res = await post(pathname, body, false);
          await res.body?.cancel();
          expect(res.status).toBe(401);
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});
