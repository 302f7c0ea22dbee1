import { existsSync } from 'node:fs';
import { governanceFixture, toolServicesFixture } from '../../tools/services.fixtures.js';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalService } from '../../services/approvals/approval.service.js';
import type { AuditLog } from '../../services/audit/audit-log.js';
import { formatReport } from '../../services/datasets/report.js';
import { APP_DIR, datasetPathPolicy } from '../../services/datasets/roots.js';
import {
  jpeg,
  makeService,
  testContext,
  writeTree,
  zipOf,
} from '../../services/datasets/datasets.fixtures.js';
import { isPlatformError } from '../../core/errors.js';
import { SqliteDb } from '../../services/infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import { datasetTools } from '../../tools/datasets.tools.js';
import type { ToolContext } from '../../tools/define.js';
import { ToolRegistry } from '../../tools/registry.js';
import { runTool } from '../../tools/run-tool.js';

// Issue 13, items 1 and 2: an operator must not read server folders outside the import roots,
// another project's storage, or arbitrary file contents through the import report; nor write
// exports outside the export roots, least of all into the app's own (publicly served) folder.

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'svc:$6$SECRETHASHVALUE$abcdefghijklmnopqrstuvwxyz:19000:0:99999:7:::',
  '\u001b[2J\u001b]0;pwned\u0007 terminal escape',
  '0 0.5 \u001b[31mred 0.2',
].join('\n');

describe('import and export roots (issue 13, items 1-2)', () => {
  const log = silentLogger();
  let db: SqliteDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let work: string;
  let imports: string;
  let exports: string;
  let outside: string;
  const publicZip = path.join(APP_DIR, 'web-chat', 'public', `stolen-${process.pid}-${Date.now()}.zip`);
  const operatorA = testContext('default', 'operator');
  const operatorB = testContext('line3', 'operator');

  async function refusal(p: Promise<unknown>): Promise<Error> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'expected the call to be refused').toBeInstanceOf(Error);
    return err as Error;
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'vsec-roots-'));
    imports = path.join(work, 'imports');
    exports = path.join(work, 'exports');
    outside = path.join(work, 'outside');
    await mkdir(imports);
    await mkdir(exports);
    db = new SqliteDb({ file: ':memory:' });
    await db.migrate();
    // the service's own folder (its storage) is DATA_DIR; only `imports` is readable, only `exports` writable
    env = await makeService(db, undefined, (dataDir) =>
      datasetPathPolicy({ dataDir, importRoots: [imports], exportRoots: [exports] }),
    );
    const dataset = {
      'data.yaml': 'names: [helmet, head]\n',
      'images/a.jpg': await jpeg(64, 48, 1),
      'labels/a.txt': '0 0.5 0.5 0.4 0.4\n',
    };
    await writeTree(path.join(imports, 'helmets'), dataset);
    await writeTree(outside, dataset);
    await env.sut.import(operatorA, {
      name: 'helmets-a',
      source: { kind: 'folder', path: path.join(imports, 'helmets') },
    });
  });

  afterAll(async () => {
    await rm(publicZip, { force: true });
    await env?.cleanup();
    await db?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('storage prefixes stay inside the caller project', () => {
    it("another project's images are not importable through storage:images/", async () => {
      const err = await refusal(
        env.sut.import(operatorB, { name: 'stolen', source: { kind: 'storage', prefix: 'images/' } }),
      );
      expect(isPlatformError(err, 'not_found')).toBe(true);
      expect(err.message).toMatch(/projects\/line3\/images\//);
      expect(await env.sut.list(operatorB)).toEqual([]);
    });

    it("a prefix naming another project's area, or climbing out of one's own, is refused", async () => {
      for (const prefix of [
        'projects/default/',
        'projects/default/images',
        'projects',
        '../projects/default/images',
        'uploads/../../projects/default',
        '/images',
      ]) {
        const err = await refusal(
          env.sut.import(operatorB, { name: 'stolen', source: { kind: 'storage', prefix } }),
        );
        expect(
          isPlatformError(err, 'forbidden') || isPlatformError(err, 'invalid_input'),
          `${prefix}: ${err.message}`,
        ).toBe(true);
        expect(err.message).toMatch(/storage imports read only this project's area "projects\/line3\/"/);
      }
    });

    it("new images are stored under the project's own prefix, and the project can import from its own area", async () => {
      const images = (await env.sut.listImages(operatorA, 'helmets-a')).items;
      expect(images[0]!.imageKey).toMatch(/^projects\/default\/images\/[0-9a-f]{64}\.jpg$/);
      expect(images[0]!.thumbnailKey).toMatch(/^projects\/default\/thumbnails\//);
      for (const [name, data] of Object.entries({
        'data.yaml': 'names: [helmet]\n',
        'images/b.jpg': await jpeg(32, 32, 9),
        'labels/b.txt': '0 0.5 0.5 0.2 0.2\n',
      })) {
        await env.storage.put(
          `projects/line3/uploads/set1/${name}`,
          Buffer.isBuffer(data) ? data : Buffer.from(data),
        );
      }
      const own = await env.sut.import(operatorB, {
        name: 'own-upload',
        source: { kind: 'storage', prefix: 'uploads/set1' },
      });
      expect(own.version.stats.images).toBe(1);
      const images2 = (await env.sut.listImages(operatorB, 'own-upload')).items;
      expect(images2[0]!.imageKey).toMatch(/^projects\/line3\/images\//);
    });
  });

  describe('server paths only under the import roots, checked after realpath', () => {
    it('a folder outside the roots is refused with a message naming the roots and IMPORT_ROOTS', async () => {
      const err = await refusal(
        env.sut.import(operatorA, { name: 'outside', source: { kind: 'folder', path: outside } }),
      );
      expect(isPlatformError(err, 'forbidden')).toBe(true);
      expect(err.message).toContain(`imports are read only under: ${imports}`);
      expect(err.message).toMatch(/set IMPORT_ROOTS/);
    });

    it('/etc, a relative climb and a zip outside the roots are refused', async () => {
      await writeFile(
        path.join(outside, 'set.zip'),
        await zipOf([{ name: 'images/a.jpg', data: await jpeg(16, 16, 3) }]),
      );
      for (const source of [
        { kind: 'folder' as const, path: '/etc' },
        { kind: 'folder' as const, path: '../outside' },
        { kind: 'folder' as const, path: path.join(imports, '..', 'outside') },
        { kind: 'zip' as const, path: path.join(outside, 'set.zip') },
      ]) {
        const err = await refusal(env.sut.import(operatorA, { name: 'outside', source }));
        expect(isPlatformError(err, 'forbidden'), `${source.path}: ${err.message}`).toBe(true);
      }
    });

    it('a symbolic link inside a root that leads outside it is refused (checked after resolution)', async () => {
      await symlink(outside, path.join(imports, 'escape'));
      await symlink(path.join(outside, 'set.zip'), path.join(imports, 'escape.zip'));
      for (const source of [
        { kind: 'folder' as const, path: path.join(imports, 'escape') },
        { kind: 'folder' as const, path: 'escape' },
        { kind: 'zip' as const, path: path.join(imports, 'escape.zip') },
      ]) {
        const err = await refusal(env.sut.import(operatorA, { name: 'escape', source }));
        expect(isPlatformError(err, 'forbidden'), `${source.path}: ${err.message}`).toBe(true);
        expect(err.message).toMatch(/resolves to a place outside/);
      }
    });

    it("the platform's own data folder (its storage of every project) is not importable even when a root contains it", async () => {
      const policy = datasetPathPolicy({ dataDir: env.dir, importRoots: [path.dirname(env.dir)] });
      const svc = await makeService(db, undefined, () => policy);
      try {
        const err = await refusal(
          svc.sut.import(operatorB, {
            name: 'storage-folder',
            source: { kind: 'folder', path: path.join(env.dir, 'storage', 'projects', 'default') },
          }),
        );
        expect(isPlatformError(err, 'forbidden')).toBe(true);
      } finally {
        await svc.cleanup();
      }
    });

    it('a folder inside a root is imported', async () => {
      const ok = await env.sut.import(operatorA, {
        name: 'relative',
        source: { kind: 'folder', path: 'helmets' },
      });
      expect(ok.version.stats.images).toBe(1);
    });
  });

  describe('the report never echoes file contents', () => {
    let ctx: ToolContext;
    let audit: AuditLog;
    let approvals: ApprovalService;

    beforeAll(async () => {
      ({ audit, approvals } = governanceFixture(db, log));
      ctx = {
        user: { userId: 'olga', email: 'olga@x.test', name: 'olga', role: 'operator', kind: 'user' },
        projectId: 'default',
        requestId: 'req-passwd',
        log,
        services: toolServicesFixture({ approvals, audit, datasets: env.sut }),
        registry: new ToolRegistry(datasetTools),
      };
    });

    it('a labels/a.txt copied from /etc/passwd shows at most a short escaped excerpt, in the tool output and the audit log', async () => {
      await writeTree(path.join(imports, 'passwd'), {
        'images/a.jpg': await jpeg(40, 40, 5),
        'labels/a.txt': PASSWD,
      });
      const args = ctx.registry.parseInput('import_dataset', {
        source: path.join(imports, 'passwd'),
        name: 'passwd',
      });
      const req = await approvals.request(ctx, {
        tool: 'import_dataset',
        args,
        risk: 'write',
        reason: 'test',
      });
      await approvals.decide(ctx, req.id, { decision: 'approve' });
      const result = await runTool(ctx, 'import_dataset', args, { approvalId: req.id });
      expect(result.ok).toBe(true);
      const report = await env.sut.report(testContext(), 'passwd');
      const entries = (await audit.query({ projectId: 'default', limit: 1000 })).entries;
      const shown = [
        JSON.stringify(result),
        JSON.stringify(report),
        formatReport(report),
        JSON.stringify(entries),
      ].join('\n');
      expect(shown).toMatch(/malformed_line/);
      for (const secret of [
        '/bin/bash',
        'nologin',
        'SECRETHASH',
        '$6$',
        'pwned',
        '\u001b',
        '\u0007',
        'root:x',
        'daemon:x',
      ])
        expect(shown).not.toContain(secret);
      // the excerpt is there, short and escaped
      const lines = formatReport(report)
        .split('\n')
        .filter((l) => l.includes('labels/a.txt'));
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines) expect(l.length).toBeLessThan(200);
      expect(formatReport(report)).toContain('got "0 0.5 \\u001b[31mred 0.2"');
      expect(formatReport(report)).toMatch(/got a line of 31 characters that does not start with a class id/);
    });

    it('a COCO file copied from a secret file is reported without a quote of it', async () => {
      await writeTree(path.join(imports, 'coco-passwd'), {
        'images/a.jpg': await jpeg(40, 40, 6),
        'annotations.json': PASSWD,
      });
      const err = await refusal(
        env.sut.import(operatorA, {
          name: 'coco-passwd',
          source: { kind: 'folder', path: path.join(imports, 'coco-passwd') },
          format: 'coco',
        }),
      );
      const text = JSON.stringify((err as { details?: unknown }).details ?? {}) + err.message;
      expect(text).toMatch(/not valid JSON/);
      expect(text).not.toMatch(/root:x/);
    });
  });

  describe('exports only to storage or under the export roots', () => {
    it('a zip into web-chat/public (served publicly) is refused and nothing is written', async () => {
      const err = await refusal(
        env.sut.export(operatorA, 'helmets-a', { format: 'yolo', to: { kind: 'zip', path: publicZip } }),
      );
      expect(isPlatformError(err, 'forbidden')).toBe(true);
      expect(err.message).toMatch(
        /exports go to storage \(omit folder and zipPath to get a download link\) or under: .*; set EXPORT_ROOTS/,
      );
      expect(existsSync(publicZip)).toBe(false);
    });

    it("the app's own folder stays refused even when EXPORT_ROOTS names it", async () => {
      const svc = await makeService(db, undefined, (dataDir) =>
        datasetPathPolicy({ dataDir, exportRoots: [APP_DIR, path.dirname(APP_DIR)] }),
      );
      try {
        await svc.sut.import(operatorA, {
          name: 'x',
          source: {
            kind: 'zip',
            buffer: await zipOf([
              { name: 'images/a.jpg', data: await jpeg(16, 16, 4) },
              { name: 'labels/a.txt', data: '' },
            ]),
          },
        });
        for (const to of [
          { kind: 'zip' as const, path: publicZip },
          { kind: 'folder' as const, path: path.join(APP_DIR, 'web-chat', 'public', `dir-${process.pid}`) },
        ]) {
          const err = await refusal(svc.sut.export(operatorA, 'x', { format: 'coco', to }));
          expect(isPlatformError(err, 'forbidden')).toBe(true);
        }
        expect(existsSync(publicZip)).toBe(false);
      } finally {
        await svc.cleanup();
      }
    });

    it('a folder outside the roots, a relative climb, and a symbolic link leading out are refused', async () => {
      await symlink(outside, path.join(exports, 'link'));
      for (const to of [
        { kind: 'folder' as const, path: path.join(outside, 'exp') },
        { kind: 'folder' as const, path: '../outside/exp2' },
        { kind: 'zip' as const, path: path.join(exports, 'link', 'out.zip') },
        { kind: 'folder' as const, path: path.join(exports, 'link', 'sub') },
      ]) {
        const err = await refusal(env.sut.export(operatorA, 'helmets-a', { format: 'yolo', to }));
        expect(isPlatformError(err, 'forbidden'), `${to.path}: ${err.message}`).toBe(true);
      }
      expect(existsSync(path.join(outside, 'out.zip'))).toBe(false);
      expect(existsSync(path.join(outside, 'sub'))).toBe(false);
      expect(existsSync(path.join(outside, 'exp'))).toBe(false);
    });

    it('exports under a root are written private (0600 files, 0700 folders); the default goes to storage with a download link', async () => {
      const folder = await env.sut.export(operatorA, 'helmets-a', {
        format: 'yolo',
        to: { kind: 'folder', path: 'yolo-out' },
      });
      expect(folder.location).toBe(path.join(exports, 'yolo-out'));
      expect((await stat(folder.location)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(folder.location, 'data.yaml'))).mode & 0o777).toBe(0o600);
      const zip = await env.sut.export(operatorA, 'helmets-a', {
        format: 'coco',
        to: { kind: 'zip', path: path.join(exports, 'a.zip') },
      });
      expect((await stat(zip.location)).mode & 0o777).toBe(0o600);
      const stored = await env.sut.export(operatorA, 'helmets-a', { format: 'coco', to: { kind: 'zip' } });
      expect(stored).toMatchObject({
        kind: 'zip-storage',
        location: expect.stringMatching(/^exports\/default\//),
        url: expect.stringMatching(/^http/),
      });
    });
  });
});
