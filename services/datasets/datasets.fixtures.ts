import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import yazl from 'yazl';
import type { CallContext, Role } from '../../core/context.js';
import { EventBus } from '../../core/events.js';
import type { Db } from '../infra/db/port.js';
import { LocalStorage } from '../infra/storage/local.js';
import { silentLogger } from '../../core/log.js';
import { DatasetService, type DatasetLimits } from './dataset.service.js';
import { datasetPathPolicy, type DatasetPathPolicy } from './roots.js';
import type { DatasetEvent } from './events.js';

/** The real photos shipped beside the project, read in place. */
export const HARDHAT_DIR = path.resolve(process.cwd(), '../shared/datasets/hardhat-real');

/** A call context for tests. */
export function testContext(projectId = 'default', role: Role = 'operator'): CallContext {
  return {
    user: { userId: `u-${role}`, email: `${role}@example.com`, name: role, role, kind: 'user' },
    projectId,
    requestId: 'req-test',
    log: silentLogger(),
  };
}

/**
 * Server paths tests may use: imports from any temp folder and the shipped hard-hat photos, exports
 * to any temp folder; the service's own folder (`dataDir`, holding its storage) stays off limits.
 */
export function testPathPolicy(dataDir: string): DatasetPathPolicy {
  return datasetPathPolicy({ dataDir, importRoots: [tmpdir(), HARDHAT_DIR], exportRoots: [tmpdir()] });
}

/** A DatasetService over a given database and a LocalStorage in a temp folder, collecting its events. */
export async function makeService(
  db: Db,
  limits?: Partial<DatasetLimits>,
  paths?: (dir: string) => DatasetPathPolicy,
) {
  const dir = await mkdtemp(path.join(tmpdir(), 'via-ds-'));
  const storage = new LocalStorage({
    root: path.join(dir, 'storage'),
    baseUrl: 'http://127.0.0.1:8080',
    secret: 'test-secret-0123456789abcdef',
  });
  const bus = new EventBus<DatasetEvent>();
  const events: DatasetEvent[] = [];
  bus.on((e) => events.push(e));
  const sut = new DatasetService({
    db,
    storage,
    events: bus,
    log: silentLogger(),
    limits,
    paths: (paths ?? testPathPolicy)(dir),
  });
  return {
    sut,
    storage,
    events,
    dir,
    cleanup: async () => {
      await storage.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A solid-colour JPEG (distinct colours give distinct bytes). */
export function jpeg(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp({
    create: {
      width,
      height,
      channels: 3,
      background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: (seed * 53) % 256 },
    },
  })
    .jpeg()
    .toBuffer();
}

/** Writes files (text or bytes) under `root`. */
export async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, data] of Object.entries(files)) {
    const target = path.join(root, ...rel.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, data);
  }
}

/** Builds a zip in memory; `mode` sets an entry's unix mode (e.g. a symlink). */
export async function zipOf(
  entries: Array<{ name: string; data: string | Buffer; mode?: number; compress?: boolean }>,
): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries)
    zip.addBuffer(Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data), e.name, {
      mode: e.mode,
      compress: e.compress ?? true,
    });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Renames an entry inside a built zip by patching its bytes (same length), to make names yazl itself refuses to write. */
export function renameInZip(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('names must have the same length');
  const out = Buffer.from(zip);
  const needle = Buffer.from(from);
  let at = out.indexOf(needle);
  let hits = 0;
  while (at >= 0) {
    out.write(to, at, 'latin1');
    hits++;
    at = out.indexOf(needle, at + 1);
  }
  if (hits < 2) throw new Error(`expected the name in both headers, found ${hits}`);
  return out;
}
