import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deviceApiKeyFromToken, edgeRunnerOptionsSchema } from '../../edge-runner/command.js';
import { EdgeRunner } from '../../edge-runner/edge-runner.js';
import { HttpPushSource } from '../../edge-runner/sources/index.js';
import { EmbeddedPlatform } from '../../edge-runner/platform.fixtures.js';
import { silentLogger } from '../../core/log.js';
import { decodeImage, letterbox } from '../../vision/index.js';

/**
 * A PNG whose header declares `width x height` 1-bit grey pixels: a few kilobytes on the wire that
 * decode to width*height*3 bytes of RGB (432 MB for 12000x12000).
 */
function hugePng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const rows = Buffer.alloc((1 + Math.ceil(width / 8)) * height); // filter byte 0 + zero pixels per row
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// Issue 13 item 8: the edge device API had no authentication, listened on 0.0.0.0 and decoded any
// image it was sent (a 12000x12000 PNG took the runner from 142 to 595 MB).
describe('edge device API', () => {
  let root: string;
  let platform: EmbeddedPlatform;
  let jpeg: Buffer;
  let bomb: Buffer;
  const runners: EdgeRunner[] = [];

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'edge-api-sec-'));
    platform = new EmbeddedPlatform(path.join(root, 'storage'));
    await platform.start();
    jpeg = await sharp({
      create: { width: 64, height: 48, channels: 3, background: { r: 20, g: 120, b: 200 } },
    })
      .jpeg()
      .toBuffer();
    bomb = hugePng(12000, 12000);
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    await platform?.close();
    await rm(root, { recursive: true, force: true });
  });

  async function startRunner(
    opts: { apiKey?: string; maxBodyBytes?: number } = {},
  ): Promise<{ runner: EdgeRunner; url: string }> {
    const deviceId = `jetson-sec-${runners.length + 1}-${Date.now()}`;
    const runner = new EdgeRunner({
      deviceId,
      tags: ['line-3'],
      broker: platform.broker,
      dataDir: path.join(root, deviceId),
      source: new HttpPushSource(),
      httpPort: 0,
      log: silentLogger(),
      heartbeatMs: 60_000,
      hardware: 'test-board',
      ...opts,
    });
    runners.push(runner);
    await runner.start();
    return { runner, url: runner.httpUrl! };
  }

  it('answers only /healthz without the device key; /frames, /infer and /metrics say 401', async () => {
    const { runner, url } = await startRunner();
    expect([200, 503]).toContain((await fetch(`${url}/healthz`)).status);
    for (const [method, route] of [
      ['POST', '/frames'],
      ['POST', '/infer'],
      ['GET', '/metrics'],
    ] as const) {
      const body = method === 'POST' ? new Uint8Array(jpeg) : undefined;
      const anonymous = await fetch(`${url}${route}`, { method, ...(body ? { body } : {}) });
      expect(anonymous.status, `${method} ${route} without a key`).toBe(401);
      expect(((await anonymous.json()) as { error: { message: string } }).error.message).toMatch(
        /x-device-key/,
      );
      const wrong = await fetch(`${url}${route}`, {
        method,
        ...(body ? { body } : {}),
        headers: { 'x-device-key': 'not-the-key-of-this-device' },
      });
      expect(wrong.status, `${method} ${route} with a wrong key`).toBe(401);
    }
    expect(runner.apiKey).toMatch(/^.{16,}$/);
    const pushed = await fetch(`${url}/frames`, {
      method: 'POST',
      body: new Uint8Array(jpeg),
      headers: { 'x-device-key': runner.apiKey! },
    });
    expect(pushed.status).toBe(202);
    const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${runner.apiKey!}` } });
    expect(metrics.status).toBe(200);
    // the generated key is kept owner-only for local integrations, and survives a restart
    const keyFile = path.join(root, runner.deviceId, 'device-api-key');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await readFile(keyFile, 'utf8')).trim()).toBe(runner.apiKey);
  });

  it('listens on 127.0.0.1 by default; the command derives the key from the device token', async () => {
    const parsed = edgeRunnerOptionsSchema.parse({
      deviceId: 'jetson-01',
      brokerUrl: 'rabbitmq-stream://u:p@localhost:5552/',
      source: 'http',
    });
    expect(parsed.httpHost).toBe('127.0.0.1');
    const { url } = await startRunner({ apiKey: deviceApiKeyFromToken('via_tok_abc_0123456789') });
    expect(new URL(url).hostname).toBe('127.0.0.1');
    const key = deviceApiKeyFromToken('via_tok_abc_0123456789');
    expect(key).not.toContain('via_tok');
    expect(key).toBe(deviceApiKeyFromToken('via_tok_abc_0123456789'));
    expect(key).not.toBe(deviceApiKeyFromToken('via_tok_abc_0123456780'));
    expect(
      (
        await fetch(`${url}/frames`, {
          method: 'POST',
          body: new Uint8Array(jpeg),
          headers: { 'x-device-key': key },
        })
      ).status,
    ).toBe(202);
  });

  it('refuses a 12000x12000 PNG quickly, with the size and the limit, without decoding it', async () => {
    const { runner, url } = await startRunner();
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    const res = await fetch(`${url}/frames`, {
      method: 'POST',
      body: new Uint8Array(bomb),
      headers: { 'x-device-key': runner.apiKey!, 'content-type': 'image/png' },
    });
    const elapsed = performance.now() - t0;
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /12000x12000 \(144000000 pixels\), over the limit of 40000000 pixels; send a smaller image/,
    );
    expect(elapsed).toBeLessThan(2000);
    // decoding it would take ~432 MB; a refusal from the header costs next to nothing
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * 1024 * 1024);
    expect(runner.inference.count).toBe(0);
  });

  it('refuses an oversized body with 413 and, without the key, before reading it', async () => {
    const { runner, url } = await startRunner({ maxBodyBytes: 1024 * 1024 });
    const big = new Uint8Array(2 * 1024 * 1024);
    const tooLarge = await fetch(`${url}/infer`, {
      method: 'POST',
      body: big,
      headers: { 'x-device-key': runner.apiKey! },
    });
    expect(tooLarge.status).toBe(413);
    expect(((await tooLarge.json()) as { error: { message: string } }).error.message).toMatch(
      /over the limit of 1048576 bytes/,
    );
    const frames = await fetch(`${url}/frames`, {
      method: 'POST',
      body: big,
      headers: { 'x-device-key': runner.apiKey! },
    });
    expect(frames.status).toBe(413);
    expect((await fetch(`${url}/frames`, { method: 'POST', body: big })).status).toBe(401);
  });

  it('vision decodeImage and letterbox refuse the same PNG on every path that decodes images', async () => {
    await expect(decodeImage(bomb)).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/12000x12000.*over the limit/),
    });
    await expect(letterbox(bomb, { width: 64 })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(decodeImage(jpeg, { maxPixels: 1000 })).rejects.toMatchObject({
      message: expect.stringMatching(/64x48 \(3072 pixels\), over the limit of 1000/),
    });
    expect((await decodeImage(jpeg)).width).toBe(64);
  });
});
