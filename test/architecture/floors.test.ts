import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { afterAll, describe, expect, it } from 'vitest';

// The floors of docs/architecture.md, as `npm run deps` checks them (.dependency-cruiser.cjs).
const config = createRequire(import.meta.url)('../../.dependency-cruiser.cjs') as IConfiguration;
const root = path.resolve(import.meta.dirname, '../..');

async function check(baseDir: string, folders: string[], tsConfig?: string): Promise<ICruiseResult> {
  const { output } = await cruise(
    folders,
    {
      validate: true,
      ruleSet: { forbidden: config.forbidden ?? [] },
      baseDir,
      tsPreCompilationDeps: true,
      doNotFollow: { path: 'node_modules' },
      exclude: { path: '(^node_modules|^data/|^web-chat/public/|^coverage/)' },
      ...(tsConfig === undefined ? {} : { tsConfig: { fileName: tsConfig } }),
    },
    { extensions: ['.ts', '.js'] },
    tsConfig === undefined ? undefined : { tsConfig: extractTSConfig(path.join(baseDir, tsConfig)) },
  );
  return output as ICruiseResult;
}

const violations = (r: ICruiseResult) =>
  r.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));

describe('the dependency rule (dependency-cruiser with .dependency-cruiser.cjs)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'floors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function tree(files: Record<string, string>): void {
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    }
  }

  it('reports an import up a floor and an import circle in a small tree', async () => {
    tree({
      // core/ reaches up into a domain, and the domain imports core back: a floor broken and a circle
      'core/log.ts': "import { jobs } from '../services/training/model';\nexport const log = jobs;\n",
      'services/training/model.ts': "import { log } from '../../core/log';\nexport const jobs = [log];\n",
      // the edge runner may use the broker port, not a domain
      'edge-runner/runner.ts': "import { jobs } from '../services/training/model';\nexport const r = jobs;\n",
      'services/infra/broker/port.ts': 'export const STREAMS = {};\n',
      'gpu-runner/runner.ts':
        "import { STREAMS } from '../services/infra/broker/port';\nexport const g = STREAMS;\n",
    });
    const r = await check(dir, ['core', 'services', 'edge-runner', 'gpu-runner']);
    const found = violations(r);
    expect(found).toContainEqual({
      rule: 'core-is-the-floor',
      from: 'core/log.ts',
      to: 'services/training/model.ts',
    });
    expect(found).toContainEqual({
      rule: 'workers-and-vision-below-the-domain',
      from: 'edge-runner/runner.ts',
      to: 'services/training/model.ts',
    });
    const circles = r.summary.violations.filter((v) => v.rule.name === 'no-circular');
    expect(circles.length).toBeGreaterThan(0);
    expect(circles[0]?.cycle?.map((c) => c.name)).toEqual(
      expect.arrayContaining(['core/log.ts', 'services/training/model.ts']),
    );
    // the gpu runner's use of the broker port is allowed
    expect(found.filter((v) => v.from.startsWith('gpu-runner/'))).toEqual([]);
  });

  it('finds no violation in the real tree', { timeout: 180_000 }, async () => {
    // the folders `npm run deps` checks
    const folders =
      'core protocol app services vision tools agent mcp-server web-chat gpu-runner edge-runner bin evals bench test'.split(
        ' ',
      );
    const r = await check(root, folders, 'tsconfig.json');
    expect(r.summary.totalCruised).toBeGreaterThan(400);
    expect(violations(r)).toEqual([]);
  });
});
