import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelStore } from '../edge-runner/model-store.js';
import { freePort } from '../test/services.fixtures.js';
import { downloadDataset } from './dataset.js';

// A URL signed with a base where nothing listens, as an MCP process with its own default PORT made.
let dir: string;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'via-unreachable-'));
  url = `http://127.0.0.1:${await freePort()}/storage/datasets/d1/a.jpg?op=get&exp=9999999999&sig=SECRETSIG`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a runner that cannot reach signed storage URLs', () => {
  it('gpu-runner names the address it could not reach and what to configure, without the signature', async () => {
    const err = await downloadDataset(
      [{ path: 'images/train/a.jpg', url, sha256: 'a'.repeat(64), size: 1 }],
      dir,
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toContain(`cannot reach ${url.split('?')[0]}`);
    expect(message).toMatch(/ECONNREFUSED/);
    expect(message).toMatch(/PUBLIC_URL/);
    expect(message).not.toContain('SECRETSIG');
  });

  it('edge-runner names the address it could not reach and what to configure, without the signature', async () => {
    const store = new ModelStore(dir);
    await store.load();
    const err = await store.download(url, { sha256: 'a'.repeat(64), size: 1 }).catch((e: Error) => e);
    const message = (err as Error).message;
    expect(message).toContain(`cannot reach ${url.split('?')[0]}`);
    expect(message).toMatch(/PUBLIC_URL/);
    expect(message).not.toContain('SECRETSIG');
  });
});
