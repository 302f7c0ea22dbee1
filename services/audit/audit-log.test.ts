import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPlatformError } from '../../core/errors.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import { AuditLog, auditSearchDocs, entryHash, GENESIS_HASH } from './audit-log.js';

const alice = { id: 'u_alice', kind: 'user' as const };
const bob = { id: 'u_bob', kind: 'user' as const };

describe(AuditLog.name, () => {
  let dir: string;
  let db: SqliteDb;
  let clock: number;
  let sut: AuditLog;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'audit-'));
    db = new SqliteDb({ file: path.join(dir, 'a.db') });
    await db.migrate();
    clock = 1_700_000_000_000;
    sut = new AuditLog({ db, log: silentLogger(), now: () => clock++ });
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function seed(n: number, projectId = 'p1') {
    for (let i = 0; i < n; i++) {
      await sut.append({
        projectId,
        actor: i % 2 === 0 ? alice : bob,
        action: 'tool.started',
        tool: i % 3 === 0 ? 'start_training' : 'list_datasets',
        threadId: i < 3 ? 't1' : 't2',
        data: { i },
      });
    }
  }

  it('chains each entry to the previous one with a sequence per project', async () => {
    const a = await sut.append({ projectId: 'p1', actor: alice, action: 'login' + '.ok' });
    const b = await sut.append({
      projectId: 'p1',
      actor: alice,
      action: 'step.proposed',
      threadId: 't1',
      data: { tool: 'x' },
    });
    const other = await sut.append({ projectId: 'p2', actor: bob, action: 'step.proposed' });
    expect(a.seq).toBe(1);
    expect(a.prevHash).toBe(GENESIS_HASH);
    expect(b.seq).toBe(2);
    expect(b.prevHash).toBe(a.hash);
    expect(other.seq).toBe(1);
    expect(other.prevHash).toBe(GENESIS_HASH);
    expect(entryHash(b)).toBe(b.hash);
    expect(await sut.verify()).toEqual({ ok: true, checked: 3, checkpoints: 0, anchored: 0, problems: [] });
  });

  it('serialises concurrent appends so the chain never forks', async () => {
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        sut.append({ projectId: 'p1', actor: alice, action: 'tool.finished', data: { i } }),
      ),
    );
    const { entries, total } = await sut.query({ projectId: 'p1', limit: 1000 });
    expect(total).toBe(60);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect((await sut.verify('p1')).ok).toBe(true);
  });

  it('writes in the caller transaction and disappears with its rollback', async () => {
    await seed(2);
    await expect(
      db.transaction(async (trx) => {
        await sut.append(
          { projectId: 'p1', actor: alice, action: 'config.changed', data: { key: 'x' } },
          trx,
        );
        throw new Error('caller failed');
      }),
    ).rejects.toThrow('caller failed');
    const next = await sut.append({ projectId: 'p1', actor: alice, action: 'config.changed' });
    expect(next.seq).toBe(3);
    expect((await sut.verify('p1')).ok).toBe(true);
  });

  it('queries by thread, user, tool, action and time, with paging and a total', async () => {
    await seed(9);
    expect((await sut.query({ projectId: 'p1', threadId: 't1' })).total).toBe(3);
    expect(
      (await sut.query({ projectId: 'p1', userId: 'u_bob' })).entries.every((e) => e.actor.id === 'u_bob'),
    ).toBe(true);
    expect(
      (await sut.query({ projectId: 'p1', tool: 'start_training' })).entries.map((e) => e.data.i),
    ).toEqual([0, 3, 6]);
    expect((await sut.query({ projectId: 'p1', action: 'login.ok' })).total).toBe(0);
    const first = (await sut.query({ projectId: 'p1', limit: 1 })).entries[0]!;
    const window = await sut.query({ projectId: 'p1', from: first.at + 2, to: first.at + 5 });
    expect(window.entries.map((e) => e.seq)).toEqual([3, 4, 5]);
    const page = await sut.query({ projectId: 'p1', offset: 2, limit: 2, order: 'desc' });
    expect(page.total).toBe(9);
    expect(page.entries.map((e) => e.seq)).toEqual([7, 6]);
    expect((await sut.query({ projectId: 'p2' })).total).toBe(0);
  });

  it('never stores secret values', async () => {
    const e = await sut.append({
      projectId: 'p1',
      actor: alice,
      action: 'token.used',
      data: { tokenId: 'tok_1', token: 'vk_supersecret', nested: { password: 'hunter2', apiKey: 'k' } },
    });
    const raw = await db.kysely
      .selectFrom('audit_log')
      .select('data')
      .where('seq', '=', e.seq)
      .executeTakeFirstOrThrow();
    expect(raw.data).not.toContain('supersecret');
    expect(raw.data).not.toContain('hunter2');
    expect(e.data).toEqual({
      tokenId: 'tok_1',
      token: '[redacted]',
      nested: { password: '[redacted]', apiKey: '[redacted]' },
    });
  });

  it('refuses malformed entries with a clear error', async () => {
    await expect(sut.append({ projectId: 'p1', actor: alice, action: 'Deploy Now' })).rejects.toSatisfy((e) =>
      isPlatformError(e, 'invalid_input'),
    );
    await expect(sut.append({ projectId: '', actor: alice, action: 'a.b' })).rejects.toThrow(/projectId/);
    await expect(
      sut.append({ projectId: 'p1', actor: { id: 'x', kind: 'robot' as 'user' }, action: 'a.b' }),
    ).rejects.toThrow(/kind/);
  });

  it('feeds every entry to search through the outbox and yields them all for a reindex', async () => {
    await seed(3);
    const outbox = await db.kysely
      .selectFrom('search_outbox')
      .selectAll()
      .where('kind', '=', 'audit')
      .orderBy('seq')
      .execute();
    expect(outbox.map((r) => r.doc_id)).toEqual(['p1:1', 'p1:2', 'p1:3']);
    const docs = [];
    for await (const d of auditSearchDocs(db)) docs.push(d);
    expect(docs).toHaveLength(3);
    expect(docs[0]).toMatchObject({
      kind: 'audit',
      id: 'p1:1',
      projectId: 'p1',
      fields: { action: 'tool.started', tool: 'start_training', threadId: 't1' },
    });
  });

  describe('verify', () => {
    it('detects an edited entry', async () => {
      await seed(5);
      await sql`update audit_log set data = '{"i":99}' where project_id = 'p1' and seq = 3`.execute(
        db.kysely,
      );
      const r = await sut.verify('p1');
      expect(r.ok).toBe(false);
      expect(r.checked).toBe(5);
      expect(r.problems).toEqual([expect.objectContaining({ seq: 3, kind: 'edited' })]);
    });

    it('detects an entry edited and re-hashed to look consistent', async () => {
      await seed(5);
      const row = (await sut.query({ projectId: 'p1' })).entries[2]!;
      const forged = { ...row, actor: bob };
      await sql`update audit_log set actor_id = 'u_bob', hash = ${entryHash(forged)} where project_id = 'p1' and seq = 3`.execute(
        db.kysely,
      );
      expect((await sut.verify('p1')).problems).toEqual([
        expect.objectContaining({ seq: 3, kind: 'edited' }),
      ]);
    });

    it('detects a removed entry, in the middle and at the end', async () => {
      await seed(6);
      await sql`delete from audit_log where project_id = 'p1' and seq = 3`.execute(db.kysely);
      expect((await sut.verify('p1')).problems).toEqual([
        expect.objectContaining({ seq: 3, kind: 'missing' }),
      ]);
      await sql`delete from audit_log where project_id = 'p1' and seq = 6`.execute(db.kysely);
      expect((await sut.verify('p1')).problems).toEqual([
        expect.objectContaining({ seq: 3, kind: 'missing' }),
        expect.objectContaining({ seq: 6, kind: 'missing' }),
      ]);
    });

    it('detects a removal hidden by renumbering the later entries', async () => {
      await seed(5);
      await sql`delete from audit_log where project_id = 'p1' and seq = 2`.execute(db.kysely);
      for (const seq of [3, 4, 5])
        await sql`update audit_log set seq = ${seq - 1} where project_id = 'p1' and seq = ${seq}`.execute(
          db.kysely,
        );
      const r = await sut.verify('p1');
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => p.kind)).toContain('missing');
    });

    it('detects reordered entries', async () => {
      await seed(5);
      await sql`update audit_log set seq = -1 where project_id = 'p1' and seq = 2`.execute(db.kysely);
      await sql`update audit_log set seq = 2 where project_id = 'p1' and seq = 3`.execute(db.kysely);
      await sql`update audit_log set seq = 3 where project_id = 'p1' and seq = -1`.execute(db.kysely);
      const r = await sut.verify('p1');
      expect(r.ok).toBe(false);
      expect(r.problems.filter((p) => p.kind === 'reordered').map((p) => p.seq)).toEqual(
        expect.arrayContaining([2, 3]),
      );
      expect(r.problems.every((p) => p.kind === 'reordered')).toBe(true);
    });

    it('with a secret key, catches a whole chain forged without the key', async () => {
      const keyed = new AuditLog({ db, log: silentLogger(), now: () => clock++, hmacKey: 'k'.repeat(32) });
      for (let i = 0; i < 3; i++)
        await keyed.append({ projectId: 'pk', actor: alice, action: 'tool.started', data: { i } });
      expect((await keyed.verify('pk')).ok).toBe(true);
      expect((await sut.verify('pk')).ok).toBe(false);
      // Rewrite every entry and the head consistently, as someone with database access but no key could.
      const { entries } = await keyed.query({ projectId: 'pk' });
      let prev = GENESIS_HASH;
      for (const e of entries) {
        const forged = { ...e, actor: bob, prevHash: prev };
        const hash = entryHash(forged);
        await sql`update audit_log set actor_id = 'u_bob', prev_hash = ${prev}, hash = ${hash} where project_id = 'pk' and seq = ${e.seq}`.execute(
          db.kysely,
        );
        prev = hash;
      }
      await sql`update audit_heads set hash = ${prev} where project_id = 'pk'`.execute(db.kysely);
      expect((await sut.verify('pk')).ok).toBe(true);
      const r = await keyed.verify('pk');
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => p.kind)).toEqual(['edited', 'edited', 'edited']);
    });

    it('checks every project when none is named, and reports which one is broken', async () => {
      await seed(3, 'p1');
      await seed(3, 'p2');
      await sql`update audit_log set action = 'login.ok' where project_id = 'p2' and seq = 1`.execute(
        db.kysely,
      );
      const r = await sut.verify();
      expect(r.checked).toBe(6);
      expect(r.problems).toEqual([expect.objectContaining({ projectId: 'p2', seq: 1, kind: 'edited' })]);
      expect((await sut.verify('p1')).ok).toBe(true);
    });
  });
});
