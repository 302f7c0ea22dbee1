import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');

function cli(args: string[], dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: ROOT,
        env: { ...process.env, DATA_DIR: dataDir, IMPORT_ROOTS: path.dirname(dataDir), LOG_LEVEL: 'warn' },
        timeout: 60_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('visioninapp command line', () => {
  let work: string;
  let dataDir: string;
  let source: string;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'vcli-'));
    dataDir = path.join(work, 'data');
    source = path.join(work, 'tiny');
    mkdirSync(path.join(source, 'images'), { recursive: true });
    mkdirSync(path.join(source, 'labels'), { recursive: true });
    writeFileSync(path.join(source, 'data.yaml'), 'names: [helmet, head]\n');
    for (let i = 0; i < 4; i++) {
      const jpg = await sharp({
        create: { width: 64, height: 48, channels: 3, background: { r: 40 * i, g: 90, b: 200 } },
      })
        .jpeg()
        .toBuffer();
      writeFileSync(path.join(source, 'images', `img${i}.jpg`), jpg);
      writeFileSync(path.join(source, 'labels', `img${i}.txt`), `${i % 2} 0.5 0.5 0.25 0.25\n`);
    }
    writeFileSync(path.join(source, 'labels', 'img3.txt'), '0 0.5 0.5 0.25\n');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('imports a dataset with its validation report, then lists and shows it as JSON', async () => {
    const imported = await cli(['datasets', 'import', source, '--name', 'tiny'], dataDir);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/tiny@1 created/);
    expect(imported.stdout).toMatch(/malformed_line/);
    const list = await cli(['datasets', 'list', '--json'], dataDir);
    expect(list.code).toBe(0);
    const rows = JSON.parse(list.stdout) as Array<{ name: string; images: number; classNames: string[] }>;
    expect(rows).toEqual([
      expect.objectContaining({ name: 'tiny', images: 4, classNames: ['helmet', 'head'] }),
    ]);
    const shown = await cli(['datasets', 'show', 'tiny@1'], dataDir);
    expect(shown.stdout).toMatch(/classes: helmet, head/);
  }, 120_000);

  it('exits non-zero with a clear message for an unknown dataset', async () => {
    const res = await cli(['datasets', 'show', 'nope'], dataDir);
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toBe('visioninapp: dataset "nope" not found; known datasets: tiny');
  }, 60_000);

  it('lists models and devices (none yet) and verifies the audit chain', async () => {
    expect(JSON.parse((await cli(['models', 'list', '--json'], dataDir)).stdout)).toEqual([]);
    expect(JSON.parse((await cli(['devices', 'list', '--tag', 'line-3', '--json'], dataDir)).stdout)).toEqual(
      [],
    );
    const audit = await cli(['audit', 'verify'], dataDir);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/audit chain intact/);
  }, 120_000);
});
