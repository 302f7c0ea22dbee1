import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { describe, expect, it } from 'vitest';
import { S3Storage } from './s3.js';
import { storageContract } from './storage.contract.js';

// S3Storage against s3rver (an S3-protocol server from npm), started here on an ephemeral port with a temp folder.
const BUCKET = 'vision-test';
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

async function startS3rver() {
  const dir = mkdtempSync(path.join(tmpdir(), 's3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: BUCKET, configs: [] }] });
  const { port } = (await server.run()) as { port: number };
  return {
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
    const opts = { bucket: BUCKET, endpoint: srv.endpoint, region: 'us-east-1', forcePathStyle: true, credentials };
    const storage = new S3Storage({ ...opts, partSize: 5 * 1024 * 1024 });
    const raw = new S3Client({ endpoint: srv.endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    return {
      storage,
      serverChecksSignatures: false,
      corrupt: async (key, bytes) => {
        const head = await storage.head(key);
        await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes, Metadata: { sha256: head!.sha256! } }));
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
  it('reports an unreachable bucket by name and variable in health', async () => {
    const srv = await startS3rver();
    const storage = new S3Storage({ bucket: 'missing-bucket', endpoint: srv.endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    try {
      const health = await storage.health();
      expect(health.ok).toBe(false);
      expect(health.detail).toContain('S3_BUCKET');
      expect(health.detail).toContain('missing-bucket');
      expect(health.detail).toContain('S3_ENDPOINT');
      await expect(storage.put('x.txt', Buffer.from('x'))).rejects.toMatchObject({ code: expect.stringMatching(/not_found|unavailable/) });
    } finally {
      await storage.close();
      await srv.stop();
    }
  });
});
