import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDb } from '../db/sqlite.js';
import { checkPassword, hashPassword, LocalIdentityProvider } from './local.js';

describe('hashPassword', () => {
  it('encodes scrypt parameters, a random salt and the hash, and checks only the right password', async () => {
    const a = await hashPassword('correct horse battery staple');
    const b = await hashPassword('correct horse battery staple');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(await checkPassword('correct horse battery staple', a)).toBe(true);
    expect(await checkPassword('correct horse battery stapler', a)).toBe(false);
    expect(await checkPassword('x', 'not-a-hash')).toBe(false);
    expect(await checkPassword('x', 'scrypt$99999999$8$1$AAAA$AAAA')).toBe(false);
  });
});

describe(LocalIdentityProvider.name, () => {
  let dir: string;
  let db: SqliteDb;
  let sut: LocalIdentityProvider;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vauth-'));
    db = new SqliteDb({ file: path.join(dir, 'a.db') });
    await db.migrate();
    sut = new LocalIdentityProvider({ db });
    const base = { provider: 'local' as const, created_at: Date.now() };
    await db.kysely
      .insertInto('users')
      .values([
        {
          ...base,
          id: 'usr_1',
          email: 'ana@example.com',
          name: 'Ana',
          password_hash: await hashPassword('s3cret-pass'),
          disabled: 0,
        },
        {
          ...base,
          id: 'usr_2',
          email: 'off@example.com',
          name: 'Off',
          password_hash: await hashPassword('s3cret-pass'),
          disabled: 1,
        },
        {
          ...base,
          id: 'usr_3',
          email: 'fb@example.com',
          name: 'Fb',
          password_hash: null,
          disabled: 0,
          provider: 'firebase',
        },
      ])
      .execute();
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns the identity for the right password, whatever the email case', async () => {
    expect(await sut.verifyPassword(' Ana@Example.com ', 's3cret-pass')).toEqual({
      provider: 'local',
      subject: 'usr_1',
      email: 'ana@example.com',
      name: 'Ana',
    });
  });

  it('says only "wrong email or password" for a wrong password, unknown email, disabled or password-less account', async () => {
    for (const [email, pw] of [
      ['ana@example.com', 'nope'],
      ['nobody@example.com', 's3cret-pass'],
      ['off@example.com', 's3cret-pass'],
      ['fb@example.com', 'anything'],
      ['', ''],
    ] as const) {
      await expect(sut.verifyPassword(email, pw)).rejects.toMatchObject({
        code: 'unauthenticated',
        message: 'wrong email or password',
      });
    }
  });

  it('reports healthy', async () => {
    expect(await sut.health()).toEqual({ port: 'auth', adapter: 'local', ok: true });
  });
});
