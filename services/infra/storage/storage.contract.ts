import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPlatformError } from '../../../core/errors.js';
import type { Storage } from './port.js';

/** What each adapter's test hands the contract: the storage, a way to corrupt stored bytes behind its back, and cleanup. */
export interface StorageFixture {
  storage: Storage;
  /** Replaces the stored bytes of `key` without updating its recorded sha256 (simulates corruption). */
  corrupt: (key: string, bytes: Buffer) => Promise<void>;
  cleanup?: () => Promise<void>;
  /**
   * False when the server behind the adapter does not check URL signatures (s3rver skips SigV4
   * verification; real S3 checks it): the tamper tests then assert the URL is signed per key instead.
   */
  serverChecksSignatures?: boolean;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A deterministic multi-chunk stream of `total` bytes; returns the stream and the bytes it will produce. */
function chunkedStream(total: number, chunk = 256 * 1024): { stream: Readable; bytes: Buffer } {
  const bytes = randomBytes(total);
  async function* gen() {
    for (let off = 0; off < total; off += chunk) {
      yield bytes.subarray(off, Math.min(total, off + chunk));
      await new Promise((r) => setImmediate(r));
    }
  }
  return { stream: Readable.from(gen()), bytes };
}

function signatureOf(url: string): string | undefined {
  const q = new URL(url).searchParams;
  return q.get('X-Amz-Signature') ?? q.get('sig') ?? undefined;
}

function expectSignedPerKey(a: string, b: string): void {
  expect(signatureOf(a)).toMatch(/^[A-Za-z0-9_-]{16,}$/);
  expect(signatureOf(b)).toMatch(/^[A-Za-z0-9_-]{16,}$/);
  expect(signatureOf(a)).not.toBe(signatureOf(b));
}

/** The contract every Storage adapter honours; `bigStreamBytes` should exceed one multipart part on S3. */
export function storageContract(
  name: string,
  init: () => Promise<StorageFixture>,
  opts: { bigStreamBytes?: number } = {},
): void {
  describe(`Storage contract: ${name}`, () => {
    let fx: StorageFixture;
    let s: Storage;

    beforeAll(async () => {
      fx = await init();
      s = fx.storage;
    });
    afterAll(async () => {
      await s?.close();
      await fx?.cleanup?.();
    });

    it('reports healthy', async () => {
      expect(await s.health()).toMatchObject({ port: 'storage', ok: true });
    });

    it('puts a buffer and reads it back with its sha256 and content type', async () => {
      const body = Buffer.from('hello, helmets ⛑️');
      const put = await s.put('c/buf/hello.txt', body, { contentType: 'text/plain' });
      expect(put).toEqual({ key: 'c/buf/hello.txt', size: body.length, sha256: sha(body) });
      expect(await s.getBuffer('c/buf/hello.txt')).toEqual(body);
      expect(await readAll(await s.get('c/buf/hello.txt', { verify: true }))).toEqual(body);
      const head = await s.head('c/buf/hello.txt');
      expect(head).toMatchObject({
        key: 'c/buf/hello.txt',
        size: body.length,
        sha256: sha(body),
        contentType: 'text/plain',
      });
      expect(head!.updatedAt).toBeGreaterThan(Date.now() - 60_000);
    });

    it('streams a multi-megabyte object in and out with the right sha256', async () => {
      const { stream, bytes } = chunkedStream(opts.bigStreamBytes ?? 6 * 1024 * 1024 + 12345);
      const put = await s.put('c/big/blob.bin', stream);
      expect(put.size).toBe(bytes.length);
      expect(put.sha256).toBe(sha(bytes));
      expect((await s.head('c/big/blob.bin'))?.sha256).toBe(sha(bytes));
      const back = await readAll(await s.get('c/big/blob.bin', { verify: true }));
      expect(back.length).toBe(bytes.length);
      expect(sha(back)).toBe(sha(bytes));
    });

    it('overwrites an object and records the new hash', async () => {
      await s.put('c/over/x.bin', Buffer.from('first'));
      const second = Buffer.from('second version');
      await s.put('c/over/x.bin', Readable.from([second]));
      expect(await s.getBuffer('c/over/x.bin')).toEqual(second);
      expect((await s.head('c/over/x.bin'))?.sha256).toBe(sha(second));
    });

    it('detects a corrupted object when reading with verify, and not without', async () => {
      const body = randomBytes(100_000);
      await s.put('c/corrupt/model.onnx', body);
      const evil = Buffer.from(body);
      evil[500] = evil[500]! ^ 0xff;
      await fx.corrupt('c/corrupt/model.onnx', evil);
      expect(await readAll(await s.get('c/corrupt/model.onnx'))).toEqual(evil);
      const err = await readAll(await s.get('c/corrupt/model.onnx', { verify: true })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isPlatformError(err)).toBe(true);
      expect((err as Error).message).toMatch(/corrupted.*sha256/);
    });

    it('lists by prefix, sorted, with sizes', async () => {
      await s.put('c/list/a/1.txt', Buffer.from('1'));
      await s.put('c/list/a/2.txt', Buffer.from('22'));
      await s.put('c/list/ab.txt', Buffer.from('333'));
      await s.put('c/list/b/3.txt', Buffer.from('4444'));
      expect((await s.list('c/list/a/')).map((o) => [o.key, o.size])).toEqual([
        ['c/list/a/1.txt', 1],
        ['c/list/a/2.txt', 2],
      ]);
      expect((await s.list('c/list/a')).map((o) => o.key)).toEqual([
        'c/list/a/1.txt',
        'c/list/a/2.txt',
        'c/list/ab.txt',
      ]);
      expect((await s.list('c/list/')).length).toBe(4);
      expect(await s.list('c/nothing-here/')).toEqual([]);
    });

    it('deletes objects; head is then undefined and get is not_found', async () => {
      await s.put('c/del/x.txt', Buffer.from('x'));
      await s.delete('c/del/x.txt');
      expect(await s.head('c/del/x.txt')).toBeUndefined();
      await expect(s.get('c/del/x.txt')).rejects.toMatchObject({ code: 'not_found' });
      await expect(s.getBuffer('c/del/x.txt')).rejects.toMatchObject({ code: 'not_found' });
      await s.delete('c/del/x.txt');
    });

    it('rejects invalid keys with invalid_input', async () => {
      for (const bad of ['', '/abs/key', 'a/../b', '..', 'a//b', 'a/', 'a\\b', './a', 'a/\u0000b']) {
        await expect(s.put(bad, Buffer.from('x')), JSON.stringify(bad)).rejects.toMatchObject({
          code: 'invalid_input',
        });
        await expect(s.head(bad), JSON.stringify(bad)).rejects.toMatchObject({ code: 'invalid_input' });
      }
      await expect(s.get('../etc/passwd')).rejects.toMatchObject({ code: 'invalid_input' });
      await expect(s.list('../')).rejects.toMatchObject({ code: 'invalid_input' });
      await expect(s.presignGet('a/../b', 60)).rejects.toMatchObject({ code: 'invalid_input' });
    });

    it('serves a presigned GET URL to plain fetch, and refuses a tampered one', async () => {
      const body = randomBytes(50_000);
      await s.put('c/signed/weights.bin', body);
      await s.put('c/signed/other.bin', Buffer.from('SECRET-OTHER-BYTES'));
      const url = await s.presignGet('c/signed/weights.bin', 300);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
      const tampered = url.replace('weights.bin', 'other.bin');
      expect(tampered).not.toBe(url);
      if (fx.serverChecksSignatures === false) {
        expectSignedPerKey(url, await s.presignGet('c/signed/other.bin', 300));
        return;
      }
      const bad = await fetch(tampered);
      expect(bad.status).toBe(403);
      expect(await bad.text()).not.toContain('SECRET-OTHER-BYTES');
    });

    it('accepts bytes on a presigned PUT URL from plain fetch, and refuses a tampered one', async () => {
      const body = randomBytes(70_000);
      const url = await s.presignPut('c/signed/upload.bin', 300, { contentType: 'application/octet-stream' });
      const res = await fetch(url, {
        method: 'PUT',
        body,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(res.status).toBe(200);
      expect(await s.getBuffer('c/signed/upload.bin')).toEqual(body);
      if (fx.serverChecksSignatures === false) {
        expectSignedPerKey(
          url,
          await s.presignPut('c/signed/evil.bin', 300, { contentType: 'application/octet-stream' }),
        );
        return;
      }
      const bad = await fetch(url.replace('upload.bin', 'evil.bin'), {
        method: 'PUT',
        body,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(bad.status).toBe(403);
      expect(await s.head('c/signed/evil.bin')).toBeUndefined();
    });

    it('refuses presigned GET and PUT URLs after they expire', async () => {
      await s.put('c/expire/x.bin', Buffer.from('soon gone'));
      const getUrl = await s.presignGet('c/expire/x.bin', 1);
      const putUrl = await s.presignPut('c/expire/y.bin', 1, { contentType: 'application/octet-stream' });
      await new Promise((r) => setTimeout(r, 2200));
      expect((await fetch(getUrl)).status).toBe(403);
      const put = await fetch(putUrl, {
        method: 'PUT',
        body: Buffer.from('late'),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(put.status).toBe(403);
      expect(await s.head('c/expire/y.bin')).toBeUndefined();
    });
  });
}
