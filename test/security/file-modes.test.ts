import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.js';
import { SqliteDb } from '../../services/infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform, type Platform } from '../../app/platform.js';

const mode = (p: string) => statSync(p).mode & 0o777;

/** Every file and folder under `root`, with its permission bits. */
function walk(root: string): Array<[string, number, boolean]> {
  const out: Array<[string, number, boolean]> = [];
  for (const name of readdirSync(root)) {
    const p = path.join(root, name);
    const dir = statSync(p).isDirectory();
    out.push([path.relative(root, p), mode(p), dir]);
    if (dir) out.push(...walk(p).map(([r, m, d]) => [path.join(name, r), m, d] as [string, number, boolean]));
  }
  return out;
}

describe('data files are owner-only (0600 files, 0700 folders) even with a permissive umask', () => {
  let parent: string;
  let dataDir: string;
  let platform: Platform;
  let umask: number;

  beforeAll(async () => {
    umask = process.umask(0o022);
    parent = mkdtempSync(path.join(tmpdir(), 'via-modes-'));
    dataDir = path.join(parent, 'data');
    const config = loadConfig(
      {
        DATA_DIR: dataDir,
        LOG_LEVEL: 'silent',
        EMBEDDED_GPU_RUNNER: 'false',
        SIMULATED_DEVICES: '0',
        DEMO_DATASET: 'false',
      },
      parent,
    );
    platform = await createPlatform(config, silentLogger());
    await platform.prepare();
    await platform.infra.storage.put('images/p/a.jpg', Buffer.from('not really a jpeg'), {
      contentType: 'image/jpeg',
    });
  }, 60_000);

  afterAll(async () => {
    await platform?.close();
    process.umask(umask);
    rmSync(parent, { recursive: true, force: true });
  });

  it('creates DATA_DIR, the SQLite database (with -wal/-shm) and every storage file and folder owner-only', () => {
    expect(mode(dataDir)).toBe(0o700);
    const db = path.join(dataDir, 'visioninapp.db');
    expect(mode(db)).toBe(0o600);
    const entries = walk(dataDir);
    expect(entries.map(([p]) => p)).toEqual(
      expect.arrayContaining([
        'visioninapp.db',
        'storage',
        path.join('storage', 'objects', 'images', 'p', 'a.jpg'),
      ]),
    );
    const open = entries
      .filter(([, m, dir]) => (dir ? m !== 0o700 : m !== 0o600))
      .map(([p, m]) => `${p} ${m.toString(8)}`);
    expect(open).toEqual([]);
  });

  it('tightens an existing database file', async () => {
    const dir = path.join(parent, 'loose');
    const file = path.join(dir, 'x.db');
    const first = new SqliteDb({ file });
    await first.close();
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o644);
    const again = new SqliteDb({ file });
    await again.close();
    expect(mode(file)).toBe(0o600);
  });
});
