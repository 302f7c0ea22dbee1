import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestClient, type TestServer } from '../../web-chat/server.fixtures.js';

// Oversized and malformed chat input at the HTTP and socket boundaries: a clear error a person can act
// on, no conversation created, no plan run, and the server keeps answering.
describe('oversized and malformed chat input', () => {
  let t: TestServer;
  let operator: TestClient;

  beforeAll(async () => {
    t = await startTestServer();
    operator = await t.login('operator');
  });
  afterAll(async () => t?.close());

  async function conversations(): Promise<number> {
    const res = await operator.fetch('/api/conversations');
    const body = (await res.json()) as { conversations: unknown[] };
    return body.conversations.length;
  }

  async function expectError(res: Response, status: number, message: RegExp): Promise<void> {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.message).toMatch(message);
    expect(JSON.stringify(body)).not.toMatch(/at \w+ \(|node_modules|SyntaxError/);
  }

  it('refuses a chat message over 4,000 characters over REST, saying the limit, and starts nothing', async () => {
    const before = await conversations();
    await expectError(
      await operator.fetch('/api/conversations', { method: 'POST', json: { message: 'train '.repeat(700) } }),
      400,
      /under 4000 characters/,
    );
    await expectError(
      await operator.fetch('/api/conversations', { method: 'POST', json: { message: '   ' } }),
      400,
      /say what you want done/,
    );
    expect(await conversations()).toBe(before);
    // A message right at the limit is accepted.
    const ok = await operator.fetch('/api/conversations', {
      method: 'POST',
      json: { message: `list datasets ${'x'.repeat(4000 - 'list datasets '.length)}` },
    });
    expect(ok.status).toBe(201);
    expect(await conversations()).toBe(before + 1);
  });

  it('answers 400 for a body over 1 MB, for invalid JSON and for invalid UTF-8, and keeps serving', async () => {
    const headers = {
      cookie: operator.cookie,
      'x-csrf-token': operator.csrf,
      'content-type': 'application/json',
    };
    const huge = await fetch(`${t.url}/api/conversations`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ message: 'x'.repeat(1_100_000) }),
    });
    await expectError(huge, 400, /too large; send less than 1 MB/);
    await expectError(
      await fetch(`${t.url}/api/conversations`, {
        method: 'POST',
        headers,
        body: '{"message": "list datasets"',
      }),
      400,
      /not valid JSON/,
    );
    // 0xC3 0x28 is an invalid two-byte sequence and 0xFF is never valid UTF-8.
    const invalidUtf8 = Buffer.concat([
      Buffer.from('{"message": "list '),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from(' datasets"}'),
    ]);
    const res = await fetch(`${t.url}/api/conversations`, { method: 'POST', headers, body: invalidUtf8 });
    // Decoded with replacement characters (as body-parser does): an ordinary conversation about that text, nothing else.
    expect(res.status).toBe(201);
    const thread = (await res.json()) as { id: string };
    const shown = await (await operator.fetch(`/api/conversations/${thread.id}`)).text();
    expect(shown).toContain('list \uFFFD(\uFFFD datasets');
    expect((await operator.fetch('/api/datasets')).status).toBe(200);
  });

  it('acknowledges an oversized or malformed socket chat message with an error and keeps the socket usable', async () => {
    const socket: Socket = connect(t.url, {
      transports: ['websocket'],
      extraHeaders: { cookie: operator.cookie },
      reconnection: false,
      forceNew: true,
    });
    await new Promise<void>(
      (resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject)),
    );
    try {
      const before = await conversations();
      const big = (await socket.emitWithAck('chat:send', { message: 'x'.repeat(4001) })) as {
        ok: boolean;
        error?: { code: string; message: string };
      };
      expect(big.ok).toBe(false);
      expect(big.error?.code).toBe('invalid_input');
      expect(big.error?.message).toMatch(/message/);
      for (const bad of [
        null,
        42,
        'list datasets',
        { message: 7 },
        { message: 'ok', threadId: 'x'.repeat(500) },
      ]) {
        const ack = (await socket.emitWithAck('chat:send', bad)) as { ok: boolean; error?: { code: string } };
        expect(ack.ok, JSON.stringify(bad)).toBe(false);
        expect(ack.error?.code).toBe('invalid_input');
      }
      expect(await conversations()).toBe(before);
      const fine = (await socket.emitWithAck('chat:send', { message: 'list datasets' })) as {
        ok: boolean;
        threadId?: string;
      };
      expect(fine.ok).toBe(true);
      expect(fine.threadId).toBeTruthy();
      expect(await conversations()).toBe(before + 1);
    } finally {
      socket.close();
    }
  });
});
