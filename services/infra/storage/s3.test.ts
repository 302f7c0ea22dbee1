import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import S3rver from 's3rver';
import { describe, expect, it } from 'vitest';
import { S3Storage } from './s3.js';
import { storageContract } from './storage.contract.js';

// S3Storage against s3rver (an S3-protocol server from npm), started here on an ephemeral port with a temp folder.
const BUCKET = 'vision-test';
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

async function startS3rver() {
  const dir = mkdtempSync(path.join(tmpdir(), 's3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    configureBuckets: [{ name: BUCKET, configs: [] }],
  });
  // s3rver is a Koa app; a first middleware records each request line so the test can see multipart parts.
  const requests: string[] = [];
  (
    server as unknown as {
      middleware: Array<(ctx: { method: string; url: string }, next: () => Promise<void>) => Promise<void>>;
    }
  ).middleware.unshift(async (ctx, next) => {
    requests.push(`${ctx.method} ${ctx.url}`);
    await next();
  });
  const { port } = (await server.run()) as { port: number };
  return {
    requests,
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

storageContract(
  's3 (s3rver)',
  async () => {
    const srv = await startS3rver();
    const opts = {
      bucket: BUCKET,
      endpoint: srv.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials,
    };
    const storage = new S3Storage({ ...opts, partSize: 5 * 1024 * 1024 });
    const raw = new S3Client({
      endpoint: srv.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials,
    });
    return {
      storage,
      serverChecksSignatures: false,
      corrupt: async (key, bytes) => {
        const head = await storage.head(key);
        await raw.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: key,
            Body: bytes,
            Metadata: { sha256: head!.sha256! },
          }),
        );
      },
      cleanup: async () => {
        raw.destroy();
        await srv.stop();
      },
    };
  },
  { bigStreamBytes: 11 * 1024 * 1024 + 4321 },
);

describe(S3Storage.name, () => {
  it('uploads a large stream in several multipart parts and records its sha256', async () => {
    const srv = await startS3rver();
    const storage = new S3Storage({
      bucket: BUCKET,
      endpoint: srv.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials,
      partSize: 5 * 1024 * 1024,
    });
    try {
      const bytes = randomBytes(11 * 1024 * 1024);
      const put = await storage.put(
        'multi/part.bin',
        Readable.from([bytes.subarray(0, 4_000_000), bytes.subarray(4_000_000)]),
      );
      expect(put.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      const parts = srv.requests.filter(
        (r) => r.startsWith('PUT /vision-test/multi/part.bin?') && r.includes('partNumber='),
      );
      expect(parts.length).toBe(3);
      expect(srv.requests.some((r) => r.startsWith('POST /vision-test/multi/part.bin?uploads'))).toBe(true);
      expect((await storage.head('multi/part.bin'))?.sha256).toBe(put.sha256);
    } finally {
      await storage.close();
      await srv.stop();
    }
  });

  it('reports an unreachable bucket by name and variable in health', async () => {
    const srv = await startS3rver();
    const storage = new S3Storage({
      bucket: 'missing-bucket',
      endpoint: srv.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials,
    });
    try {
      const health = await storage.health();
      expect(health.ok).toBe(false);
      expect(health.detail).toContain('S3_BUCKET');
      expect(health.detail).toContain('missing-bucket');
      expect(health.detail).toContain('S3_ENDPOINT');
      await expect(storage.put('x.txt', Buffer.from('x'))).rejects.toMatchObject({
        code: expect.stringMatching(/not_found|unavailable/),
      });
    } finally {
      await storage.close();
      await srv.stop();
    }
  });
});
