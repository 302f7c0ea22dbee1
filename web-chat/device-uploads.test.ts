import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../services/accounts/index.js';
import { makeEnvelope } from '../services/infra/broker/index.js';
import { startTestServer, type TestServer } from './server.fixtures.js';

describe('POST /api/fleet/devices/:id/feedback-uploads', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
    // device tokens are minted only for devices registered (by a heartbeat) in the project
    for (const deviceId of ['jetson-07', 'jetson-08']) {
      await t.platform.fleet.handleTelemetry(
        makeEnvelope(
          'device.heartbeat',
          {
            deviceId,
            name: deviceId,
            tags: ['line-3'],
            hardware: 'Jetson Orin Nano 8GB',
            runtime: {},
            provider: 'cpu',
            modelVersionId: null,
            state: 'idle',
            fps: 0,
            latencyP50Ms: 0,
            latencyP95Ms: 0,
            meanTopConfidence: null,
            cpuPercent: 10,
            memoryMb: 500,
            temperatureC: 40,
          },
          { source: deviceId },
        ),
      );
    }
  }, 60_000);
  afterAll(async () => t?.close());

  async function tokenFor(scopes: string[]): Promise<string> {
    const { token } = await t.platform.accounts.createApiToken({
      userId: t.users.admin.id,
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
      const put = await fetch(u.url, {
        method: 'PUT',
        body: Buffer.from('jpeg bytes'),
        headers: { 'content-type': 'image/jpeg' },
      });
      expect(put.status).toBeLessThan(300);
    }
  });

  it('refuses a token scoped to another device, and an operator session', async () => {
    expect((await ask('jetson-07', await tokenFor(['api', 'device:jetson-08']))).status).toBe(403);
    const operator = await t.login('operator');
    const res = await operator.fetch('/api/fleet/devices/jetson-07/feedback-uploads', {
      method: 'POST',
      json: { count: 1 },
    });
    expect(res.status).toBe(403);
  });

  it('refuses a request without credentials and a count out of range', async () => {
    const res = await fetch(`${t.url}/api/fleet/devices/jetson-07/feedback-uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"count":1}',
    });
    expect(res.status).toBe(401);
    expect((await ask('jetson-07', await tokenFor(['api', 'device:jetson-07']), 500)).status).toBe(400);
  });
});
