import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../core/context.js';
import { jpeg, writeTree } from '../services/datasets/datasets.fixtures.js';
import { startTestServer, type TestClient, type TestServer } from './server.fixtures.js';

// The Datasets page's search box (GET /api/datasets?q=) asks the search port, not a substring scan.
describe('GET /api/datasets?q=', () => {
  let t: TestServer;
  let viewer: TestClient;
  let dir: string;

  beforeAll(async () => {
    t = await startTestServer();
    viewer = await t.login('viewer');
    dir = await mkdtemp(path.join(tmpdir(), 'vweb-ds-search-'));
    await writeTree(dir, {
      'data.yaml': 'names: [helmet, head]\n',
      'images/train/a.jpg': await jpeg(64, 48, 1),
      'labels/train/a.txt': '0 0.5 0.5 0.2 0.2\n',
    });
    const ctx = { user: systemPrincipal(), projectId: 'default', requestId: 't', log: t.platform.log };
    await t.platform.datasets.import(ctx, {
      name: 'hardhats-line3',
      description: 'Site cameras at the north gate',
      tags: ['line-3'],
      source: { kind: 'folder', path: dir },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const names = async (q?: string) => {
    const res = await viewer.fetch(`/api/datasets${q === undefined ? '' : `?q=${encodeURIComponent(q)}`}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { datasets: Array<{ name: string }> }).datasets.map((d) => d.name);
  };

  it('answers from the search index: words of the description, classes and tags, prefixes and typos', async () => {
    expect(await names()).toEqual(['hardhats-line3']);
    // this server runs no indexer loop: until the index is built, the search finds nothing
    expect(await names('north gate')).toEqual([]);
    await t.platform.reindex();
    for (const q of ['north gate', 'helm', 'line-3', 'camras'])
      expect(await names(q), q).toEqual(['hardhats-line3']);
    expect(await names('forklift')).toEqual([]);
    expect(await names('north forklift')).toEqual([]);
  });
});
