import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal, type CallContext } from '../core/context.js';
import { silentLogger } from '../core/log.js';
import {
  buildFixtureDetector,
  registerFixtureModel,
  writeFixtureDataset,
} from '../services/models/models.fixtures.js';
import { loadConfig } from './config.js';
import { createPlatform, type Platform } from './platform.js';

const ctx: CallContext = {
  user: systemPrincipal(),
  projectId: 'default',
  requestId: 'reads-test',
  log: silentLogger(),
};

/**
 * The hot reads the front ends and tools use (dataset summaries and versions, model versions,
 * search results) come from the read cache, and are never stale after a change: each case reads,
 * changes what it read through the platform, and reads again at once.
 */
describe('cached reads of the platform', () => {
  let dir: string;
  let platform: Platform;
  let source: string;
  let onnx: Buffer;
  const hits = () => platform.reads.stats().hits;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'via-reads-'));
    source = path.join(dir, 'source');
    await writeFixtureDataset(source);
    onnx = await buildFixtureDetector(dir);
    platform = await createPlatform(
      loadConfig(
        {
          DATA_DIR: path.join(dir, 'data'),
          LOG_LEVEL: 'silent',
          DEMO_DATASET: 'false',
          EMBEDDED_GPU_RUNNER: 'false',
          SIMULATED_DEVICES: '0',
          IMPORT_ROOTS: source,
        },
        dir,
      ),
      silentLogger(),
    );
    await platform.prepare();
    await platform.start();
  });
  afterAll(async () => {
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves dataset summaries and versions from the cache until an import or a new version changes them', async () => {
    const { datasets } = platform.tools.services;
    expect(await datasets!.list(ctx)).toEqual([]);
    const before = hits();
    expect(await datasets!.list(ctx)).toEqual([]);
    expect(hits()).toBe(before + 1);

    await platform.datasets.import(ctx, { name: 'helmets', source: { kind: 'folder', path: source } });
    const listed = await datasets!.list(ctx);
    expect(listed.map((d) => [d.name, d.latestVersion, d.images])).toEqual([['helmets', 1, 3]]);
    expect((await datasets!.get(ctx, 'helmets')).version).toBe(1);

    await platform.datasets.resplit(ctx, 'helmets@1', { train: 0.5, val: 0.25, test: 0.25 });
    expect((await datasets!.list(ctx))[0]!.latestVersion).toBe(2);
    expect((await datasets!.get(ctx, 'helmets')).version).toBe(2);
    expect((await platform.datasets.listVersions(ctx, 'helmets')).map((v) => v.version)).toEqual([2, 1]);
    // a cached answer is the answer the service gives
    expect(await datasets!.list(ctx)).toEqual(await platform.datasets.list(ctx));
  });

  it('serves model versions from the cache until a registration or a promotion changes them', async () => {
    const { models } = platform.tools.services;
    expect(await models!.list(ctx)).toEqual([]);
    const v1 = await registerFixtureModel(platform.models, platform.infra.storage, onnx, 'job_reads_1');
    expect((await models!.list(ctx)).map((m) => m.ref)).toEqual([v1.ref]);
    expect((await models!.get(ctx, 'helmets')).stages).toEqual(['candidate']);
    const before = hits();
    await models!.get(ctx, 'helmets');
    expect(hits()).toBe(before + 1);

    await platform.models.promote(ctx, v1.ref, 'production');
    expect((await models!.get(ctx, 'helmets')).stages).toContain('production');
    expect((await models!.list(ctx, { stage: 'production' })).map((m) => m.ref)).toEqual([v1.ref]);
    const v2 = await registerFixtureModel(platform.models, platform.infra.storage, onnx, 'job_reads_2');
    expect((await models!.get(ctx, 'helmets')).ref).toBe(v2.ref);
    expect(await models!.list(ctx)).toEqual(await platform.models.list(ctx));
  });

  it('serves search results from the cache until the indexer applies a change', async () => {
    const { search } = platform.tools.services;
    const query = { projectId: 'default', text: 'forklifts' };
    expect((await search!.query(query)).total).toBe(0);
    const before = hits();
    expect((await search!.query(query)).total).toBe(0);
    expect(hits()).toBe(before + 1);

    await platform.datasets.import(ctx, { name: 'forklifts', source: { kind: 'folder', path: source } });
    // once the indexer has applied the change (drains are serial: this one ends after any running one)
    await platform.indexer.drainOnce();
    expect((await search!.query(query)).total).toBeGreaterThan(0);
  });
});
