import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtureDetector, png, registerFixtureModel } from '../services/models/models.fixtures.js';
import { startTestServer, type TestClient, type TestServer } from './server.fixtures.js';

// POST /api/models/:ref/try runs the fixture detector (models.fixtures.ts) on an uploaded image.
describe('POST /api/models/:ref/try', () => {
  let server: TestServer;
  let viewer: TestClient;
  let work: string;
  let onnx: Buffer;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'via-try-'));
    onnx = await buildFixtureDetector(work);
    server = await startTestServer();
    viewer = await server.login('viewer');
  }, 90_000);

  afterAll(async () => {
    await server?.close();
    await rm(work, { recursive: true, force: true });
  });

  const send = (ref: string, body: BodyInit, type = 'image/png', query = '') =>
    viewer.fetch(`/api/models/${encodeURIComponent(ref)}/try${query}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body,
    });

  it('answers the boxes the version finds on the image, and stores nothing', async () => {
    const { models, infra } = server.platform;
    const v = await registerFixtureModel(models, infra.storage, onnx, 'job_try_1');
    const before = await infra.storage.list('');
    const res = await send(v.ref, new Uint8Array(await png(2)), 'image/png', '?conf=0.5');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      model: string;
      detections: Array<{ className: string; box: number[] }>;
    };
    expect(body.model).toBe(v.ref);
    expect(body.detections.map((d) => [d.className, d.box])).toEqual([
      ['helmet', [8, 8, 24, 24]],
      ['head', [40, 10, 56, 26]],
    ]);
    expect((await infra.storage.list('')).length).toBe(before.length);
  });

  it("answers 404 for another project's version and 400 for a bad image or a JSON body", async () => {
    const { models, infra } = server.platform;
    const theirs = await registerFixtureModel(
      models,
      infra.storage,
      onnx,
      'job_try_2',
      { name: 'theirs' },
      'other',
    );
    const hidden = await send(theirs.id, new Uint8Array(await png(2)));
    expect(hidden.status).toBe(404);

    const bad = await send('helmets@1', new Uint8Array(Buffer.from('these are not pixels')));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
      /could not decode the image.*JPEG, PNG or WebP/,
    );
    const json = await viewer.fetch('/api/models/helmets@1/try', { method: 'POST', json: { image: 'x' } });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: { message: string } }).error.message).toMatch(/image bytes/);
    const huge = await send('helmets@1', new Uint8Array(11 * 1024 * 1024));
    expect(huge.status).toBe(400);
    expect(((await huge.json()) as { error: { message: string } }).error.message).toMatch(/less than 10 MB/);
  });
});
