import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../audit/index.js';
import type { Db } from '../infra/db/port.js';
import { silentLogger } from '../../core/log.js';
import { ChatLinkService, type ChatIdentity } from './chat-link.service.js';

const MINUTE = 60_000;

/** ChatLinkService behaviour, run against any Db (SQLite beside the code, MariaDB in the int test). */
export function chatLinkServiceSuite(
  name: string,
  init: () => Promise<{ db: Db; cleanup?: () => Promise<void> }>,
): void {
  describe(`${ChatLinkService.name} (${name})`, () => {
    let db: Db;
    let cleanup: (() => Promise<void>) | undefined;
    let audit: AuditLog;
    let sut: ChatLinkService;
    let clock = Date.UTC(2026, 0, 1);
    const alice = { userId: 'usr_alice', kind: 'user' as const, projectId: 'default' };
    const bob = { userId: 'usr_bob', kind: 'user' as const, projectId: 'default' };
    const chat = (userId: string): ChatIdentity => ({
      platform: 'slack',
      teamId: 'T1',
      teamName: 'acme',
      userId,
      userName: userId.toLowerCase(),
    });

    beforeAll(async () => {
      ({ db, cleanup } = await init());
      await db.migrate();
      audit = new AuditLog({ db, log: silentLogger(), now: () => clock });
      sut = new ChatLinkService({ db, audit, log: silentLogger(), codeTtlMs: 10 * MINUTE, now: () => clock });
    });
    afterAll(async () => {
      await db?.close();
      await cleanup?.();
    });

    it('stores only a hash of the code; describes it; links once; a second confirmation is refused', async () => {
      const { code, expiresAt } = await sut.createCode(chat('U1'));
      expect(expiresAt).toBe(clock + 10 * MINUTE);
      const stored = await db.kysely
        .selectFrom('chat_link_codes')
        .selectAll()
        .where('chat_user_id', '=', 'U1')
        .execute();
      expect(stored).toHaveLength(1);
      expect(JSON.stringify(stored)).not.toContain(code);
      expect(await sut.describeCode(code)).toEqual({
        platform: 'slack',
        teamId: 'T1',
        teamName: 'acme',
        chatUserId: 'U1',
        chatUserName: 'u1',
        expiresAt,
      });

      const link = await sut.confirm(alice, code);
      expect(link).toMatchObject({ chatUserId: 'U1', userId: alice.userId });
      expect(await sut.resolve('slack', 'T1', 'U1')).toBe(alice.userId);
      await expect(sut.confirm(bob, code)).rejects.toMatchObject({ code: 'not_found' });
      expect(await sut.resolve('slack', 'T1', 'U1')).toBe(alice.userId);
    });

    it('lets exactly one of two simultaneous confirmations win', async () => {
      const { code } = await sut.createCode(chat('URACE'));
      const results = await Promise.allSettled([sut.confirm(alice, code), sut.confirm(bob, code)]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const winner = (
        results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ userId: string }>
      ).value.userId;
      expect(await sut.resolve('slack', 'T1', 'URACE')).toBe(winner);
      expect(
        (await sut.listFor(alice.userId))
          .concat(await sut.listFor(bob.userId))
          .filter((l) => l.chatUserId === 'URACE'),
      ).toHaveLength(1);
    });

    it('refuses a code after its lifetime, malformed codes and non-person callers', async () => {
      const { code } = await sut.createCode(chat('U2'));
      clock += 10 * MINUTE;
      await expect(sut.describeCode(code)).rejects.toMatchObject({ code: 'not_found' });
      await expect(sut.confirm(alice, code)).rejects.toMatchObject({ code: 'not_found' });
      await expect(sut.describeCode('../../etc')).rejects.toMatchObject({ code: 'not_found' });
      const fresh = await sut.createCode(chat('U2'));
      await expect(sut.confirm({ ...alice, kind: 'token' }, fresh.code)).rejects.toMatchObject({
        code: 'forbidden',
      });
      await expect(sut.createCode({ ...chat('U3'), platform: 'irc' })).rejects.toMatchObject({
        code: 'invalid_input',
      });
    });

    it('re-linking a chat user moves it to the new account; unlink removes only your own; both are audited', async () => {
      const first = await sut.confirm(alice, (await sut.createCode(chat('U4'))).code);
      const second = await sut.confirm(bob, (await sut.createCode(chat('U4'))).code);
      expect(await sut.resolve('slack', 'T1', 'U4')).toBe(bob.userId);
      expect((await sut.listFor(alice.userId)).map((l) => l.id)).not.toContain(first.id);

      await expect(sut.unlink(alice, second.id)).rejects.toMatchObject({ code: 'not_found' });
      await sut.unlink(bob, second.id);
      expect(await sut.resolve('slack', 'T1', 'U4')).toBeUndefined();
      await expect(sut.unlink(bob, second.id)).rejects.toMatchObject({ code: 'not_found' });

      const { entries } = await audit.query({ projectId: 'default', order: 'asc', limit: 500 });
      const u4 = entries
        .filter((e) => e.data.chatUserId === 'U4')
        .map((e) => [e.action, e.actor.id, e.data.replacedLinkOf ?? null]);
      expect(u4).toEqual([
        ['chat_link.linked', alice.userId, null],
        ['chat_link.linked', bob.userId, alice.userId],
        ['chat_link.unlinked', bob.userId, null],
      ]);
      expect((await audit.verify('default')).ok).toBe(true);
    });
  });
}
