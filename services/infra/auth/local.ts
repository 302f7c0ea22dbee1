import { PlatformError } from '../../../core/errors.js';
import type { Db } from '../db/port.js';
import type { Health } from '../health.js';
import { burnPasswordCheck, checkPassword } from './password.js';
import type { Identity, IdentityProvider } from './port.js';

export { checkPassword, hashPassword } from './password.js';

/** Local accounts: email and scrypt-hashed password in the `users` table. */
export class LocalIdentityProvider implements IdentityProvider {
  readonly kind = 'local' as const;
  private readonly db: Db;

  constructor(opts: { db: Db }) {
    this.db = opts.db;
  }

  async verifyPassword(email: string, password: string): Promise<Identity> {
    const wrong = () => new PlatformError('unauthenticated', 'wrong email or password');
    const normalized = typeof email === 'string' ? email.trim().toLowerCase() : '';
    if (normalized === '' || typeof password !== 'string' || password === '') throw wrong();
    const user = await this.db.kysely
      .selectFrom('users')
      .select(['id', 'email', 'name', 'password_hash', 'disabled'])
      .where('email', '=', normalized)
      .executeTakeFirst();
    if (!user?.password_hash) {
      await burnPasswordCheck(password);
      throw wrong();
    }
    const ok = await checkPassword(password, user.password_hash);
    if (!ok || Number(user.disabled) !== 0) throw wrong();
    return { provider: 'local', subject: user.id, email: user.email, name: user.name };
  }

  async health(): Promise<Health> {
    return { port: 'auth', adapter: 'local', ok: true };
  }

  async close(): Promise<void> {}
}
