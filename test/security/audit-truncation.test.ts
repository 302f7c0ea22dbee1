import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { loadConfig } from '../../app/config.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform } from '../../app/platform.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');
const ENV = {
  LOG_LEVEL: 'error',
  EMBEDDED_GPU_RUNNER: 'false',
  SIMULATED_DEVICES: '0',
  DEMO_DATASET: 'false',
  AUDIT_CHECKPOINT_EVERY: '5',
};
const actor = { id: 'alice', kind: 'user' as const };

/** Runs `visioninapp audit verify --json [...]` as a real process against a data folder. */
function verify(
  dataDir: string,
  ...flags: string[]
): Promise<{
  code: number | null;
  result: { ok: boolean; problems: Array<{ seq: number; kind: string; detail: string }> };
  stderr: string;
}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'audit', 'verify', '--json', ...flags], {
      cwd: dataDir,
      env: { ...process.env, ...ENV, DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // the printed result is the block from a line "{" to a line "}"; log lines may surround it
    child.on('exit', (code) =>
      resolve({ code, result: JSON.parse(/^\{$[\s\S]*?^\}$/m.exec(stdout)?.[0] ?? '{}'), stderr }),
    );
  });
}

interface HeadRow {
  project_id: string;
  seq: number;
  hash: string;
  updated_at: number;
  key_id: string | null;
  mac: string | null;
}

describe('audit verify catches the newest entries truncated and the head rewound (SQLite, CLI)', () => {
  const dirs: string[] = [];
  let original: string;
  /** audit_heads as it was after entry 8: a legitimately signed head an attacker could have copied. */
  let headAt8: HeadRow;

  /** A copy of the original data folder with `sql` run on its database and `files` removed. */
  function tampered(sql: string[], removeFiles: string[] = []): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'vsec-trunc-copy-'));
    dirs.push(dir);
    cpSync(original, dir, { recursive: true });
    const db = new Database(path.join(dir, 'visioninapp.db'));
    for (const s of sql) db.exec(s);
    db.close();
    for (const f of removeFiles) rmSync(path.join(dir, f), { force: true });
    return dir;
  }
  const rewindHead = () =>
    `UPDATE audit_heads SET seq = ${headAt8.seq}, hash = '${headAt8.hash}', updated_at = ${headAt8.updated_at}, key_id = '${headAt8.key_id}', mac = '${headAt8.mac}' WHERE project_id = 'default'`;

  beforeAll(async () => {
    original = mkdtempSync(path.join(tmpdir(), 'vsec-trunc-'));
    dirs.push(original);
    const platform = await createPlatform(
      loadConfig({ ...ENV, DATA_DIR: original }, original),
      silentLogger(),
    );
    await platform.prepare();
    for (let i = 1; i <= 12; i++) {
      await platform.audit.append({
        projectId: 'default',
        actor,
        action: 'tool.finished',
        tool: 'start_training',
        data: { i },
      });
      if (i === 8)
        headAt8 = (await platform.infra.db.kysely
          .selectFrom('audit_heads')
          .selectAll()
          .where('project_id', '=', 'default')
          .executeTakeFirstOrThrow()) as HeadRow;
    }
    // closing checkpoints the newest entry (12) and anchors it in DATA_DIR/audit-anchor.json
    await platform.close();
  }, 60_000);

  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('the untouched chain is intact, and the keys and anchor file are owner-only', async () => {
    const intact = await verify(original);
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.result).toMatchObject({ ok: true, checked: 12, anchored: 1 });
    for (const f of ['audit-key', 'audit-key-legacy', 'audit-anchor.json'])
      expect(statSync(path.join(original, f)).mode & 0o777, f).toBe(0o600);
    const fast = await verify(original, '--since-checkpoint');
    expect(fast.code, fast.stderr).toBe(0);
    expect(fast.result).toMatchObject({ ok: true, checked: 1 });
  }, 60_000);

  it('deleting the last 4 entries and restoring the signed head of entry 8 is caught (full and --since-checkpoint)', async () => {
    const dir = tampered([`DELETE FROM audit_log WHERE project_id = 'default' AND seq > 8`, rewindHead()]);
    const flagSets = [[], ['--since-checkpoint']];
    const results = await Promise.all(flagSets.map((flags) => verify(dir, ...flags)));
    for (const [i, r] of results.entries()) {
      const flags = flagSets[i]!;
      expect(r.code, `${flags.join(' ')} ${r.stderr}`).toBe(1);
      expect(r.result.ok).toBe(false);
      expect(r.result.problems).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            kind: 'missing',
            detail: expect.stringMatching(/signed checkpoint|anchor file/),
          }),
        ]),
      );
    }
  }, 60_000);

  it('also deleting the newer checkpoints from the database is caught by the anchor file', async () => {
    const dir = tampered([
      `DELETE FROM audit_log WHERE project_id = 'default' AND seq > 8`,
      `DELETE FROM audit_checkpoints WHERE project_id = 'default' AND seq > 8`,
      rewindHead(),
    ]);
    const r = await verify(dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.result.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          seq: 12,
          kind: 'missing',
          detail: expect.stringMatching(/anchor file recorded it/),
        }),
      ]),
    );
  }, 60_000);

  it('a head forged without the key (seq and hash of entry 8, no valid signature) is caught', async () => {
    const dir = tampered(
      [
        `DELETE FROM audit_log WHERE project_id = 'default' AND seq > 8`,
        `DELETE FROM audit_checkpoints WHERE project_id = 'default' AND seq > 8`,
        `UPDATE audit_heads SET seq = 8, hash = '${headAt8.hash}' WHERE project_id = 'default'`,
      ],
      ['audit-anchor.json'],
    );
    const r = await verify(dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.result.problems).toEqual([
      expect.objectContaining({
        seq: 8,
        kind: 'edited',
        detail: expect.stringMatching(/head fails its signature/),
      }),
    ]);
  }, 60_000);

  it('a checkpoint forged or edited without the key is caught', async () => {
    // checkpoints were signed at entry 1, every 5 entries after it (6, 11) and at shutdown (12)
    const dir = tampered([
      `UPDATE audit_checkpoints SET at = at + 1 WHERE project_id = 'default' AND seq = 6`,
    ]);
    const r = await verify(dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.result.problems).toEqual([
      expect.objectContaining({
        seq: 6,
        kind: 'edited',
        detail: expect.stringMatching(/checkpoint .* fails its signature/),
      }),
    ]);
  }, 60_000);
});

describe('GET /api/audit/verify catches a truncated chain', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { AUDIT_CHECKPOINT_EVERY: '3' } });
  }, 60_000);
  afterAll(() => server?.close());

  it('reports the removed entries, with and without sinceCheckpoint', async () => {
    const { audit, infra } = server.platform;
    const projectId = DEFAULT_PROJECT_ID;
    for (let i = 1; i <= 7; i++)
      await audit.append({ projectId, actor, action: 'tool.finished', data: { i } });
    const copy = await infra.db.kysely
      .selectFrom('audit_heads')
      .selectAll()
      .where('project_id', '=', projectId)
      .executeTakeFirstOrThrow();
    for (let i = 8; i <= 11; i++)
      await audit.append({ projectId, actor, action: 'tool.finished', data: { i } });
    const operator = await server.login('operator');
    const ok = await operator.fetch('/api/audit/verify');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, problems: [] });

    await infra.db.kysely
      .deleteFrom('audit_log')
      .where('project_id', '=', projectId)
      .where('seq', '>', Number(copy.seq))
      .execute();
    await infra.db.kysely.updateTable('audit_heads').set(copy).where('project_id', '=', projectId).execute();
    for (const q of ['', '?sinceCheckpoint=true']) {
      const res = await operator.fetch(`/api/audit/verify${q}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { ok: boolean; problems: Array<{ kind: string }> };
      expect(body.ok, q).toBe(false);
      expect(body.problems, q).toEqual(
        expect.arrayContaining([expect.objectContaining({ kind: 'missing' })]),
      );
    }
  }, 60_000);
});
