import express from 'express';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from './local.js';
import { localStorageRouter } from './local-http.js';
import { storageContract } from './storage.contract.js';

async function serve(opts: { maxUploadBytes?: number } = {}) {
  const root = mkdtempSync(path.join(tmpdir(), 'vstore-'));
  const app = express();
  const server: Server = await new Promise((resolve) => {
    const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
  });
  const port = (server.address() as AddressInfo).port;
  const storage = new LocalStorage({
    root,
    baseUrl: `http://127.0.0.1:${port}`,
    secret: 'test-secret-0123456789abcdef',
    ...opts,
  });
  app.use(localStorageRouter(storage));
  return {
    storage,
    root,
    cleanup: async () => {
      await new Promise((r) => server.close(r));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

storageContract('local', async () => {
  const { storage, root, cleanup } = await serve();
  return {
    storage,
    corrupt: async (key, bytes) => writeFileSync(path.join(root, 'objects', ...key.split('/')), bytes),
    cleanup,
  };
});

describe(LocalStorage.name, () => {
  let env: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    env = await serve({ maxUploadBytes: 1000 });
  });
  afterAll(async () => env.cleanup());

  it('keeps files under root/objects and leaves no temp files behind', async () => {
    await env.storage.put('datasets/d1/img 1.jpg', Buffer.from('jpeg'));
    expect(readdirSync(path.join(env.root, 'objects', 'datasets', 'd1'))).toEqual(['img 1.jpg']);
    expect(readdirSync(path.join(env.root, 'tmp'))).toEqual([]);
  });

  it('keeps bytes and recorded sha256 consistent under concurrent puts of one key', async () => {
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(10_000 + i, i));
    await Promise.all(bodies.map((b) => env.storage.put('race/same.bin', b)));
    const stored = await env.storage.getBuffer('race/same.bin');
    const head = await env.storage.head('race/same.bin');
    expect(head?.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    const verified = env.storage.get('race/same.bin', { verify: true }).then(async (s) => {
      for await (const _ of s) void _;
    });
    await expect(verified).resolves.toBeUndefined();
  });

  it('never confuses an object with metadata, whatever the key is named', async () => {
    await env.storage.put('meta/x.json', Buffer.from('{"a":1}'));
    await env.storage.put('meta', Buffer.from('not a folder')).catch(() => undefined);
    await env.storage.put('x.json', Buffer.from('plain'));
    expect((await env.storage.getBuffer('meta/x.json')).toString()).toBe('{"a":1}');
    expect((await env.storage.getBuffer('x.json')).toString()).toBe('plain');
    expect((await env.storage.head('x.json'))?.size).toBe(5);
  });

  it('reports a clear conflict when a key would be both an object and a folder', async () => {
    await env.storage.put('clash/a', Buffer.from('file'));
    await expect(env.storage.put('clash/a/b', Buffer.from('x'))).rejects.toMatchObject({ code: 'conflict' });
    expect((await env.storage.getBuffer('clash/a')).toString()).toBe('file');
  });

  it('signs keys with spaces and unicode, and serves them with content type and sha256 headers', async () => {
    const body = Buffer.from('안전모');
    const put = await env.storage.put('photos/안전모 1.txt', body, { contentType: 'text/plain' });
    const res = await fetch(await env.storage.presignGet('photos/안전모 1.txt', 60));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('x-content-sha256')).toBe(put.sha256);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
  });

  it('answers 403 with a JSON reason for unsigned, wrong-operation and forged URLs', async () => {
    const origin = new URL(await env.storage.presignGet('photos/x.txt', 60)).origin;
    const unsigned = await fetch(`${origin}/storage/photos/x.txt`);
    expect(unsigned.status).toBe(403);
    expect(((await unsigned.json()) as { error: { message: string } }).error.message).toMatch(/not signed/);

    const putUrl = await env.storage.presignPut('photos/new.txt', 60);
    const wrongOp = await fetch(putUrl);
    expect(wrongOp.status).toBe(403);
    expect(((await wrongOp.json()) as { error: { message: string } }).error.message).toMatch(
      /allows PUT, not GET/,
    );

    const forged = putUrl.replace(/sig=[^&]+/, 'sig=AAAA');
    const res = await fetch(forged, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden');
  });

  it('answers 404 for a signed URL to a missing object', async () => {
    const res = await fetch(await env.storage.presignGet('nope/missing.bin', 60));
    expect(res.status).toBe(404);
  });

  it('refuses uploads over the size limit with 413, declared or streamed, and stores nothing', async () => {
    const url = await env.storage.presignPut('big/too-big.bin', 60);
    const declared = await fetch(url, { method: 'PUT', body: Buffer.alloc(5000) });
    expect(declared.status).toBe(413);
    const chunked = await fetch(url, {
      method: 'PUT',
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(400));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await env.storage.head('big/too-big.bin')).toBeUndefined();
    expect(readdirSync(path.join(env.root, 'tmp'))).toEqual([]);
  });

  it('checks signed URL parts directly', () => {
    expect(() => env.storage.verifySignedUrl({ op: 'get', key: 'a', exp: '9999999999', sig: 'x' })).toThrow(
      /does not match/,
    );
  });
});
