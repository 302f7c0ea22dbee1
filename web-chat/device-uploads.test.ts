import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../services/accounts/index.js';
import { startTestServer, type TestServer } from './test-support.js';

describe('POST /api/fleet/devices/:id/feedback-uploads', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  }, 60_000);
  afterAll(async () => t?.close());

  async function tokenFor(scopes: string[]): Promise<string> {
    const { token } = await t.platform.accounts.createApiToken({
      userId: t.users.operator.id,
      projectId: DEFAULT_PROJECT_ID,
      name: `device ${scopes.join(' ')}`,
      role: 'operator',
      scopes,
    });
    return token;
  }

  const ask = (deviceId: string, token: string, count = 2) =>
    fetch(`${t.url}/api/fleet/devices/${deviceId}/feedback-uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ count }),
    });

  it('gives a device token presigned PUT URLs under its own feedback prefix', async () => {
    const res = await ask('jetson-07', await tokenFor(['api', 'device:jetson-07']));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { uploads: Array<{ url: string; key: string }> };
    expect(body.uploads).toHaveLength(2);
    for (const u of body.uploads) {
      expect(u.key).toMatch(/^feedback\/jetson-07\//);
      const put = await fetch(u.url, { method: 'PUT', body: Buffer.from('jpeg bytes'), headers: { 'content-type': 'image/jpeg' } });
      expect(put.status).toBeLessThan(300);
    }
  });

  it('refuses a token scoped to another device, and an operator session', async () => {
    expect((await ask('jetson-07', await tokenFor(['api', 'device:jetson-08']))).status).toBe(403);
    const operator = await t.login('operator');
    const res = await operator.fetch('/api/fleet/devices/jetson-07/feedback-uploads', { method: 'POST', json: { count: 1 } });
    expect(res.status).toBe(403);
  });

  it('refuses a request without credentials and a count out of range', async () => {
    const res = await fetch(`${t.url}/api/fleet/devices/jetson-07/feedback-uploads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"count":1}' });
    expect(res.status).toBe(401);
    expect((await ask('jetson-07', await tokenFor(['api', 'device:jetson-07']), 500)).status).toBe(400);
  });
});
