import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform } from '../../app/platform.js';
import { AuditLog } from '../../services/audit/audit-log.js';
import { loadAuditKeyring } from '../../services/audit/audit-keys.js';
import { SqliteDb } from '../../services/infra/db/sqlite.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');
const ENV = {
  LOG_LEVEL: 'error',
  EMBEDDED_GPU_RUNNER: 'false',
  SIMULATED_DEVICES: '0',
  DEMO_DATASET: 'false',
};

/** Runs `visioninapp audit verify` as a real process against a data folder. */
function verify(
  dataDir: string,
  json = false,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'audit', 'verify', ...(json ? ['--json'] : [])], {
      cwd: dataDir,
      env: { ...process.env, ...ENV, DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('visioninapp audit verify against a tampered SQLite file', () => {
  const dirs: string[] = [];
  let original: string;

  /** A copy of the original data folder, changed by `sql` run directly on its database file. */
  function tampered(sql: string[]): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'vsec-audit-copy-'));
    dirs.push(dir);
    cpSync(original, dir, { recursive: true });
    const db = new Database(path.join(dir, 'visioninapp.db'));
    for (const s of sql) db.exec(s);
    db.close();
    return dir;
  }

  beforeAll(async () => {
    original = mkdtempSync(path.join(tmpdir(), 'vsec-audit-'));
    dirs.push(original);
    const platform = await createPlatform(
      loadConfig({ ...ENV, DATA_DIR: original }, original),
      silentLogger(),
    );
    await platform.prepare();
    const actor = { id: 'alice', kind: 'user' as const };
    for (const [i, action] of [
      'plan.proposed',
      'approval.requested',
      'approval.decided',
      'tool.started',
      'tool.finished',
      'user.login',
    ].entries()) {
      await platform.audit.append({
        projectId: 'default',
        actor,
        action,
        tool: 'start_training',
        threadId: 'thread-1',
        data: { step: i, args: { dataset: 'helmets-v2', epochs: 10 } },
      });
    }
    await platform.close();
  }, 60_000);

  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('exits 0 on the untouched chain and 1 naming the problem for an edit, a deletion and a reordering', async () => {
    const edited = tampered([
      `UPDATE audit_log SET data = replace(data, '"epochs":10', '"epochs":1000') WHERE seq = 4`,
    ]);
    const deleted = tampered([`DELETE FROM audit_log WHERE seq = 3`]);
    const reordered = tampered([
      `UPDATE audit_log SET seq = -1 WHERE seq = 4`,
      `UPDATE audit_log SET seq = 4 WHERE seq = 5`,
      `UPDATE audit_log SET seq = 5 WHERE seq = -1`,
    ]);
    const [intact, e, d, r] = await Promise.all([
      verify(original),
      verify(edited),
      verify(deleted, true),
      verify(reordered),
    ]);
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.stdout).toMatch(/audit chain intact: 6 entries checked/);
    expect(e.code, e.stderr).toBe(1);
    expect(e.stdout).toMatch(/audit chain BROKEN/);
    expect(e.stdout).toMatch(/seq 4: edited .*content was changed/);
    expect(d.code, d.stderr).toBe(1);
    expect(JSON.parse(d.stdout)).toMatchObject({
      ok: false,
      problems: [expect.objectContaining({ seq: 3, kind: 'missing' })],
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/seq [45]: reordered/);
  }, 60_000);

  it('the untouched copy verifies with the keyring alone (no platform)', async () => {
    const dir = tampered([]);
    const db = new SqliteDb({ file: path.join(dir, 'visioninapp.db') });
    const keyring = loadAuditKeyring({
      dataDir: dir,
      signingSecret: readFileSync(path.join(dir, 'signing-secret'), 'utf8').trim(),
    });
    const result = await new AuditLog({ db, log: silentLogger(), keyring }).verify();
    await db.close();
    expect(result.problems).toEqual([]);
  });

  it('catches the subtler edits too: another actor, a deletion hidden by renumbering, a truncated tail', async () => {
    const cases: Array<[string, string[]]> = [
      ['actor', [`UPDATE audit_log SET actor_id = 'mallory' WHERE seq = 3`]],
      [
        'renumbered',
        [`DELETE FROM audit_log WHERE seq = 3`, `UPDATE audit_log SET seq = seq - 1 WHERE seq > 3`],
      ],
      ['tail', [`DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)`]],
      ['time', [`UPDATE audit_log SET at = at - 86400000 WHERE seq = 2`]],
    ];
    for (const [label, sql] of cases) {
      const dir = tampered(sql);
      const db = new SqliteDb({ file: path.join(dir, 'visioninapp.db') });
      // the platform's own keys (both files exist in the copied folder), so only the tampering can fail it
      const keyring = loadAuditKeyring({
        dataDir: dir,
        signingSecret: readFileSync(path.join(dir, 'signing-secret'), 'utf8').trim(),
      });
      const result = await new AuditLog({ db, log: silentLogger(), keyring }).verify();
      await db.close();
      expect(result.ok, label).toBe(false);
      expect(result.problems.length, label).toBeGreaterThan(0);
    }
  });
});
