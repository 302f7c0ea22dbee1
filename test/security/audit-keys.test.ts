import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditKeyId, AuditLog, legacyAuditKey } from '../../services/audit/index.js';
import { loadConfig } from '../../app/config.js';
import { SqliteDb } from '../../services/infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform, type Platform } from '../../app/platform.js';

const ENV = {
  LOG_LEVEL: 'silent',
  EMBEDDED_GPU_RUNNER: 'false',
  SIMULATED_DEVICES: '0',
  DEMO_DATASET: 'false',
};
const S1 = 'signing-secret-one-0123456789abcdefghij';
const S2 = 'signing-secret-two-0123456789abcdefghij';
const K1 = 'audit-key-one-0123456789abcdefghijklmnop';
const K2 = 'audit-key-two-0123456789abcdefghijklmnop';
const actor = { id: 'alice', kind: 'user' as const };
const projectId = 'keys';

describe('audit keys: rotating SIGNING_SECRET or AUDIT_KEY keeps the audit log verifiable', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  function dataDir(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'vsec-auditkeys-'));
    dirs.push(dir);
    return dir;
  }

  /** Runs `fn` on a platform over `dir` with `env`, then closes it. */
  async function withPlatform<T>(
    dir: string,
    env: Record<string, string>,
    fn: (p: Platform) => Promise<T>,
  ): Promise<T> {
    const platform = await createPlatform(loadConfig({ ...ENV, ...env, DATA_DIR: dir }, dir), silentLogger());
    await platform.prepare();
    try {
      return await fn(platform);
    } finally {
      await platform.close();
    }
  }

  async function append(p: Platform, n: number): Promise<void> {
    for (let i = 0; i < n; i++)
      await p.audit.append({ projectId, actor, action: 'tool.finished', data: { i } });
  }

  it('a rotated SIGNING_SECRET leaves the chain intact (the audit key is its own)', async () => {
    const dir = dataDir();
    await withPlatform(dir, { SIGNING_SECRET: S1 }, (p) => append(p, 3));
    const after = await withPlatform(dir, { SIGNING_SECRET: S2 }, async (p) => {
      await append(p, 2);
      return p.audit.verify(projectId);
    });
    expect(after.problems).toEqual([]);
    expect(after).toMatchObject({ ok: true, checked: 5 });
  });

  it('entries written before key ids (hashed under the SIGNING_SECRET-derived key) still verify after SIGNING_SECRET is rotated', async () => {
    const dir = dataDir();
    // the previous version: entries without a key id, HMAC under a key derived from SIGNING_SECRET
    const db = new SqliteDb({ file: path.join(dir, 'visioninapp.db') });
    await db.migrate();
    const old = new AuditLog({ db, log: silentLogger(), hmacKey: legacyAuditKey(S1) });
    for (let i = 0; i < 3; i++) await old.append({ projectId, actor, action: 'tool.finished', data: { i } });
    await db.close();
    // the first start of this version pins that key, so the rotation below does not lose it
    await withPlatform(dir, { SIGNING_SECRET: S1 }, (p) => append(p, 2));
    const after = await withPlatform(dir, { SIGNING_SECRET: S2 }, async (p) => ({
      result: await p.audit.verify(projectId),
      keyIds: (await p.audit.query({ projectId })).entries.map((e) => e.keyId),
    }));
    expect(after.result.problems).toEqual([]);
    expect(after.result.ok).toBe(true);
    const current = after.keyIds.at(-1);
    expect(after.keyIds).toEqual([null, null, null, current, current]);
    expect(current).toMatch(/^k[0-9a-f]{16}$/);
  });

  it('a rotated AUDIT_KEY with the old key in AUDIT_KEYS verifies old entries, and new entries use the new key id', async () => {
    const dir = dataDir();
    await withPlatform(dir, { AUDIT_KEY: K1 }, (p) => append(p, 3));
    const rotated = await withPlatform(
      dir,
      { AUDIT_KEY: K2, AUDIT_KEYS: K1, SIGNING_SECRET: S2 },
      async (p) => {
        const before = await p.audit.verify(projectId);
        await append(p, 2);
        return {
          before,
          after: await p.audit.verify(projectId),
          keyIds: (await p.audit.query({ projectId })).entries.map((e) => e.keyId),
        };
      },
    );
    expect(rotated.before.problems).toEqual([]);
    expect(rotated.after.problems).toEqual([]);
    expect(rotated.after).toMatchObject({ ok: true, checked: 5 });
    const [k1, k2] = [auditKeyId(K1), auditKeyId(K2)];
    expect(k1).not.toBe(k2);
    expect(rotated.keyIds).toEqual([k1, k1, k1, k2, k2]);

    // without the retired key the old entries cannot be checked, and verify says what to do
    const withoutOld = await withPlatform(dir, { AUDIT_KEY: K2 }, (p) => p.audit.verify(projectId));
    expect(withoutOld.ok).toBe(false);
    const entryProblems = withoutOld.problems.filter((x) => /^entry \d+ \(/.test(x.detail));
    expect(entryProblems.map((x) => x.seq)).toEqual([1, 2, 3]);
    expect(
      entryProblems.every((x) => x.detail.includes(`audit key ${k1}`) && x.detail.includes('AUDIT_KEYS')),
    ).toBe(true);
  });

  it('an AUDIT_KEY that is too short is refused without echoing it', () => {
    expect(() => loadConfig({ ...ENV, AUDIT_KEY: 'too-short-secret' }, tmpdir())).toThrow(/AUDIT_KEY/);
    expect(() => loadConfig({ ...ENV, AUDIT_KEY: 'too-short-secret' }, tmpdir())).not.toThrow(
      /too-short-secret/,
    );
  });
});
