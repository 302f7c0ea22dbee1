import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../app/config.js';
import { createPlatform } from '../app/platform.js';
import { systemPrincipal } from '../core/context.js';
import { silentLogger } from '../core/log.js';
import { execFile } from 'node:child_process';
import { buildFixtureDetector, writeFixtureDataset } from '../services/models/models.fixtures.js';
import { catalogDataset, isCatalogRef } from './catalog-data.js';
import { runVal } from './train-val.js';

const CLI = fileURLToPath(new URL('./visioninapp.js', import.meta.url));
const log = silentLogger();

/** Runs the CLI with `env` added; never rejects. */
function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

describe('--data name@N (a dataset version of the catalog)', () => {
  let root: string;
  let cfg: Config;
  let env: Record<string, string>;
  let source: string;
  let model: string;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cli-catalog-'));
    source = path.join(root, 'imports', 'helmets-eval');
    await writeFixtureDataset(source);
    model = path.join(root, 'model.onnx');
    await writeFile(model, await buildFixtureDetector(root));
    env = {
      DATA_DIR: path.join(root, 'platform'),
      LOG_LEVEL: 'silent',
      IMPORT_ROOTS: path.join(root, 'imports'),
      EMBEDDED_GPU_RUNNER: 'false',
      SIMULATED_DEVICES: '0',
      DEMO_DATASET: 'false',
    };
    cfg = configSchema.parse(env);
    const platform = await createPlatform(cfg, log);
    try {
      await platform.prepare();
      const ctx = { user: systemPrincipal(), projectId: 'default', requestId: 't', log };
      await platform.datasets.import(ctx, { name: 'helmets-eval', source: { kind: 'folder', path: source } });
      await platform.infra.db.kysely
        .insertInto('projects')
        .values({ id: 'plant-b', name: 'plant-b', description: '', created_at: Date.now() })
        .execute();
    } finally {
      await platform.close();
    }
  }, 90_000);
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('tells a catalog version from a folder', () => {
    expect(isCatalogRef('helmets-eval@1')).toBe(true);
    expect(isCatalogRef(source)).toBe(false);
    expect(isCatalogRef('helmets-eval')).toBe(false);
  });

  it('exports the version once as a YOLO folder whose test split scores as the source folder does', async () => {
    const said: string[] = [];
    const folder = await catalogDataset(cfg, log, 'helmets-eval@1', 'default', (m) => said.push(m));
    expect(folder).toBe(path.join(env.DATA_DIR!, 'exports', 'cli', 'default', 'helmets-eval@1'));
    expect(existsSync(path.join(folder, 'data.yaml'))).toBe(true);
    expect(said[0]).toMatch(/^exporting helmets-eval@1 of project default \(3 images\)/);
    const fromCatalog = await runVal({ model, data: folder, split: 'test' });
    const fromFolder = await runVal({ model, data: source, split: 'test' });
    expect(fromCatalog.images).toBe(2);
    expect(fromCatalog.metrics).toEqual(fromFolder.metrics);

    const again: string[] = [];
    expect(await catalogDataset(cfg, log, 'helmets-eval@1', 'default', (m) => again.push(m))).toBe(folder);
    expect(again[0]).toMatch(/exported before/);
  }, 60_000);

  it("is checked against the project: another project's catalog does not have it, an unknown project is refused", async () => {
    await expect(catalogDataset(cfg, log, 'helmets-eval@1', 'plant-b')).rejects.toThrow(
      /dataset "helmets-eval" not found/,
    );
    await expect(catalogDataset(cfg, log, 'helmets-eval@1', 'nope')).rejects.toThrow(
      /project "nope" not found/,
    );
    await expect(catalogDataset(cfg, log, 'helmets-eval@9', 'default')).rejects.toThrow(
      /has no version 9; versions are 1..1/,
    );
  }, 60_000);

  it('visioninapp val --data name@N runs on the catalog version', async () => {
    const r = await cli(
      ['val', '--model', model, '--data', 'helmets-eval@1', '--split', 'test', '--json'],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { images: number; data: string; metrics: { mAP50: number } };
    expect(out.images).toBe(2);
    expect(out.data).toBe(path.join(env.DATA_DIR!, 'exports', 'cli', 'default', 'helmets-eval@1'));
    const direct = await runVal({ model, data: source, split: 'test' });
    expect(out.metrics.mAP50).toBeCloseTo(direct.metrics.mAP50, 9);
    const bad = await cli(['val', '--model', model, '--data', 'helmets-eval@1', '--project', 'plant-b'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/dataset "helmets-eval" not found/);
  }, 90_000);
});
