import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../../test/services.fixtures.js';
import { MysqlDb } from '../infra/db/mysql.js';
import { silentLogger } from '../../core/log.js';
import { AuditLog } from './audit-log.js';
import { auditKeyId, createAuditKeyring } from './audit-keys.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)('AuditLog on MySQL', () => {
  let temp: { url: string; drop: () => Promise<void> };
  let one: MysqlDb;
  let two: MysqlDb;

  beforeAll(async () => {
    temp = await createTempMysqlDatabase();
    one = new MysqlDb({ url: temp.url, connectionLimit: 8 });
    two = new MysqlDb({ url: temp.url, connectionLimit: 8 });
    await one.migrate();
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await temp?.drop();
  });

  it('keeps one unforked chain when two platform instances append at once', async () => {
    const a = new AuditLog({ db: one, log: silentLogger() });
    const b = new AuditLog({ db: two, log: silentLogger() });
    const actor = { id: 'u1', kind: 'user' as const };
    await Promise.all(
      Array.from({ length: 80 }, (_, i) =>
        (i % 2 === 0 ? a : b).append({ projectId: 'race', actor, action: 'tool.finished', data: { i } }),
      ),
    );
    const { entries, total } = await a.query({ projectId: 'race', limit: 1000 });
    expect(total).toBe(80);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    for (let i = 1; i < entries.length; i++) expect(entries[i]!.prevHash).toBe(entries[i - 1]!.hash);
    expect(await b.verify('race')).toEqual({
      ok: true,
      checked: 80,
      checkpoints: 0,
      anchored: 0,
      problems: [],
    });
  });

  it('detects edits, removals and reordering on MySQL', async () => {
    const audit = new AuditLog({ db: one, log: silentLogger() });
    for (const project of ['edit', 'remove', 'swap']) {
      for (let i = 0; i < 5; i++)
        await audit.append({
          projectId: project,
          actor: { id: 'u1', kind: 'user' },
          action: 'step.proposed',
          data: { i },
        });
    }
    await sql`update audit_log set data = '{"i":42}' where project_id = 'edit' and seq = 2`.execute(
      one.kysely,
    );
    await sql`delete from audit_log where project_id = 'remove' and seq = 4`.execute(one.kysely);
    await sql`update audit_log set seq = -1 where project_id = 'swap' and seq = 4`.execute(one.kysely);
    await sql`update audit_log set seq = 4 where project_id = 'swap' and seq = 5`.execute(one.kysely);
    await sql`update audit_log set seq = 5 where project_id = 'swap' and seq = -1`.execute(one.kysely);
    expect((await audit.verify('edit')).problems).toEqual([
      expect.objectContaining({ seq: 2, kind: 'edited' }),
    ]);
    expect((await audit.verify('remove')).problems).toEqual([
      expect.objectContaining({ seq: 4, kind: 'missing' }),
    ]);
    const swapped = await audit.verify('swap');
    expect(swapped.problems.length).toBeGreaterThan(0);
    expect(swapped.problems.every((p) => p.kind === 'reordered')).toBe(true);
    expect((await audit.verify()).problems).toHaveLength(2 + swapped.problems.length);
  });

  it('catches the newest entries truncated with the signed head rewound, and verifies across an AUDIT_KEY rotation', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vaudit-mysql-'));
    try {
      const [k1, k2] = ['mysql-audit-key-one-0123456789abcdef', 'mysql-audit-key-two-0123456789abcdef'];
      const options = {
        db: one,
        log: silentLogger(),
        checkpointEvery: 3,
        anchorFile: path.join(dir, 'audit-anchor.json'),
      };
      const first = new AuditLog({ ...options, keyring: createAuditKeyring(k1) });
      const actor = { id: 'u1', kind: 'user' as const };
      for (let i = 1; i <= 4; i++)
        await first.append({ projectId: 'trunc', actor, action: 'tool.finished', data: { i } });
      // rotation: the old key stays in the keyring, new entries carry the new key id
      const second = new AuditLog({ ...options, keyring: createAuditKeyring(k2, [k1]) });
      for (let i = 5; i <= 6; i++)
        await second.append({ projectId: 'trunc', actor, action: 'tool.finished', data: { i } });
      const copy = await one.kysely
        .selectFrom('audit_heads')
        .selectAll()
        .where('project_id', '=', 'trunc')
        .executeTakeFirstOrThrow();
      for (let i = 7; i <= 10; i++)
        await second.append({ projectId: 'trunc', actor, action: 'tool.finished', data: { i } });
      await second.checkpoint();
      const { entries } = await second.query({ projectId: 'trunc' });
      expect(entries.map((e) => e.keyId)).toEqual([
        ...Array(4).fill(auditKeyId(k1)),
        ...Array(6).fill(auditKeyId(k2)),
      ]);
      expect(await second.verify('trunc')).toMatchObject({
        ok: true,
        checked: 10,
        anchored: 1,
        problems: [],
      });

      await sql`delete from audit_log where project_id = 'trunc' and seq > 6`.execute(one.kysely);
      await sql`delete from audit_checkpoints where project_id = 'trunc' and seq > 6`.execute(one.kysely);
      await one.kysely.updateTable('audit_heads').set(copy).where('project_id', '=', 'trunc').execute();
      for (const sinceCheckpoint of [false, true]) {
        const r = await second.verify('trunc', { sinceCheckpoint });
        expect(r.ok).toBe(false);
        expect(r.problems).toEqual(
          expect.arrayContaining([expect.objectContaining({ seq: 10, kind: 'missing' })]),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
