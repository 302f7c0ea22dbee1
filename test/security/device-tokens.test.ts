import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { makeEnvelope } from '../../services/infra/broker/index.js';
import {
  startTestServer,
  TEST_PASSWORD,
  type TestClient,
  type TestServer,
} from '../../web-chat/server.fixtures.js';

const MAX_BYTES = 64 * 1024;

// Issue 13 item 6: a viewer minted device-scoped tokens for any device id (existing or not, any
// project) and got upload URLs of up to 5 GiB each, 50 per call, with any Content-Type; an HTML body
// was then served back from the app origin as text/html.
describe('device tokens and feedback upload URLs', () => {
  let t: TestServer;
  let viewer: TestClient;
  let operator: TestClient;
  let admin: TestClient;

  async function heartbeat(deviceId: string): Promise<void> {
    await t.platform.fleet.handleTelemetry(
      makeEnvelope(
        'device.heartbeat',
        {
          deviceId,
          name: deviceId,
          tags: ['line-3'],
          hardware: 'Jetson Orin Nano 8GB',
          runtime: { node: '20.11.0' },
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

  const mint = (client: TestClient, scopes: string[], project?: string) =>
    client.fetch('/api/tokens', {
      method: 'POST',
      json: { name: `device ${scopes.join(' ')}`, role: 'viewer', scopes },
      ...(project ? { headers: { 'x-project-id': project } } : {}),
    });

  const askUploads = (deviceId: string, token: string, body: unknown) =>
    fetch(`${t.url}/api/fleet/devices/${deviceId}/feedback-uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  async function deviceToken(deviceId: string): Promise<string> {
    const res = await mint(admin, ['api', `device:${deviceId}`]);
    expect(res.status).toBe(201);
    return ((await res.json()) as { token: string }).token;
  }

  beforeAll(async () => {
    t = await startTestServer({
      env: { FEEDBACK_UPLOAD_MAX_BYTES: String(MAX_BYTES) },
      web: { rateLimits: { login: 1000, api: 100_000 } },
    });
    viewer = await t.login('viewer');
    operator = await t.login('operator');
    admin = await t.login('admin');
    const db = t.platform.infra.db.kysely;
    await db
      .insertInto('projects')
      .values({ id: 'other', name: 'other', description: '', created_at: Date.now() })
      .execute();
    await heartbeat('jetson-07');
    await heartbeat('jetson-elsewhere');
    await db
      .updateTable('devices')
      .set({ project_id: 'other' })
      .where('id', '=', 'jetson-elsewhere')
      .execute();
  }, 60_000);
  afterAll(async () => t?.close());

  it('a viewer or an operator cannot mint a device token, over REST or in the service', async () => {
    for (const client of [viewer, operator]) {
      const res = await mint(client, ['api', 'device:jetson-07']);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
        /only an admin .* may create a device token/,
      );
    }
    await expect(
      t.platform.accounts.createApiToken({
        userId: t.users.operator.id,
        projectId: DEFAULT_PROJECT_ID,
        name: 'x',
        role: 'viewer',
        scopes: ['device:jetson-07'],
      }),
    ).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('an admin cannot mint for an unknown device, a device of another project, or a wildcard', async () => {
    const unknown = await mint(admin, ['api', 'device:jetson-ghost']);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(
      /not registered in project "default"/,
    );
    const foreign = await mint(admin, ['api', 'device:jetson-elsewhere']);
    expect(foreign.status).toBe(404);
    for (const scope of ['device:*', 'device:', 'devices:*', 'device']) {
      expect((await mint(admin, ['api', scope])).status, scope).toBe(400);
    }
    // an admin of the other project cannot mint for this project's device either
    const otherAdmin = await t.platform.accounts.createUser({
      email: 'other-admin@example.test',
      name: 'Other Admin',
      password: TEST_PASSWORD,
      role: 'admin',
      projectId: 'other',
    });
    await expect(
      t.platform.accounts.createApiToken({
        userId: otherAdmin.id,
        projectId: 'other',
        name: 'steal',
        role: 'viewer',
        scopes: ['device:jetson-07'],
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
    // ...while its own registered device is fine
    const own = await t.platform.accounts.createApiToken({
      userId: otherAdmin.id,
      projectId: 'other',
      name: 'own',
      role: 'viewer',
      scopes: ['device:jetson-elsewhere'],
    });
    expect(own.token).toMatch(/^via_/);
  });

  it('a device token gets at most 10 image upload URLs, bound to an image type and the configured size', async () => {
    const token = await deviceToken('jetson-07');
    expect((await askUploads('jetson-07', token, { count: 50 })).status).toBe(400);
    expect((await askUploads('jetson-07', token, { count: 1, contentType: 'text/html' })).status).toBe(400);
    expect((await askUploads('jetson-08', token, { count: 1 })).status).toBe(403);
    const res = await askUploads('jetson-07', token, { count: 2, contentType: 'image/png' });
    expect(res.status).toBe(200);
    const { uploads } = (await res.json()) as { uploads: Array<{ url: string; key: string }> };
    expect(uploads).toHaveLength(2);
    const [first, second] = uploads as [{ url: string; key: string }, { url: string; key: string }];
    expect(first.key).toMatch(/^feedback\/jetson-07\/.*\.png$/);

    // the type is bound to the URL: an HTML upload is refused
    const html = await fetch(first.url, {
      method: 'PUT',
      body: '<script>alert(document.cookie)</script>',
      headers: { 'content-type': 'text/html' },
    });
    expect(html.status).toBe(403);
    // and so is a body over FEEDBACK_UPLOAD_MAX_BYTES (the old cap was 5 GiB)
    const big = await fetch(first.url, {
      method: 'PUT',
      body: new Uint8Array(MAX_BYTES + 1),
      headers: { 'content-type': 'image/png' },
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { message: string } }).error.message).toContain(
      `limit of ${MAX_BYTES} bytes`,
    );
    // tampering with the signed cap or type breaks the signature
    const raised = new URL(second.url);
    raised.searchParams.set('max', String(5 * 1024 ** 3));
    expect(
      (await fetch(raised, { method: 'PUT', body: 'x', headers: { 'content-type': 'image/png' } })).status,
    ).toBe(403);
    const retyped = new URL(second.url);
    retyped.searchParams.set('ct', 'text/html');
    expect(
      (await fetch(retyped, { method: 'PUT', body: 'x', headers: { 'content-type': 'text/html' } })).status,
    ).toBe(403);
  });

  it('an admin session asks only for registered devices of its project; a viewer session not at all', async () => {
    expect(
      (
        await viewer.fetch('/api/fleet/devices/jetson-07/feedback-uploads', {
          method: 'POST',
          json: { count: 1 },
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await admin.fetch('/api/fleet/devices/jetson-ghost/feedback-uploads', {
          method: 'POST',
          json: { count: 1 },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await admin.fetch('/api/fleet/devices/jetson-elsewhere/feedback-uploads', {
          method: 'POST',
          json: { count: 1 },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await admin.fetch('/api/fleet/devices/jetson-07/feedback-uploads', {
          method: 'POST',
          json: { count: 1 },
        })
      ).status,
    ).toBe(200);
  });

  it('serves stored objects as downloads: Content-Disposition attachment and nosniff, even an HTML body', async () => {
    const token = await deviceToken('jetson-07');
    const { uploads } = (await (await askUploads('jetson-07', token, { count: 1 })).json()) as {
      uploads: Array<{ url: string; key: string }>;
    };
    const upload = uploads[0]!;
    // bytes that are really HTML, sent under the bound image type
    const put = await fetch(upload.url, {
      method: 'PUT',
      body: '<html><script>alert(1)</script></html>',
      headers: { 'content-type': 'image/jpeg' },
    });
    expect(put.status).toBe(200);
    const storage = t.platform.infra.storage;
    await storage.put(
      'feedback/jetson-07/planted.html',
      Buffer.from('<html><script>alert(1)</script></html>'),
      { contentType: 'text/html' },
    );
    for (const key of [upload.key, 'feedback/jetson-07/planted.html']) {
      const got = await fetch(await storage.presignGet(key, 60));
      expect(got.status).toBe(200);
      expect(got.headers.get('content-disposition')).toBe('attachment');
      expect(got.headers.get('x-content-type-options')).toBe('nosniff');
      expect(got.headers.get('content-security-policy')).toContain('sandbox');
    }
  });

  it('drops a feedback sample whose stored object is not an image or is over the size limit', async () => {
    const storage = t.platform.infra.storage;
    const before = (await t.platform.infra.db.kysely.selectFrom('feedback_samples').select('id').execute())
      .length;
    const put = await storage.put('feedback/jetson-07/2026-01-01/evil.jpg', Buffer.from('<html></html>'), {
      contentType: 'text/html',
    });
    await t.platform.feedback.handleTelemetry(
      makeEnvelope(
        'feedback.sample',
        {
          deviceId: 'jetson-07',
          modelVersionId: null,
          imageKey: put.key,
          sha256: put.sha256,
          width: 10,
          height: 10,
          reason: 'low_confidence',
          predictions: [],
          capturedAt: Date.now(),
        },
        { source: 'jetson-07' },
      ),
    );
    expect(
      (await t.platform.infra.db.kysely.selectFrom('feedback_samples').select('id').execute()).length,
    ).toBe(before);
    expect(await storage.head(put.key)).toBeUndefined();
  });
});
