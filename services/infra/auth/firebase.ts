import { randomBytes } from 'node:crypto';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getAuth, type Auth, type DecodedIdToken, type UserRecord } from 'firebase-admin/auth';
import { z } from 'zod';
import { PlatformError } from '../../../core/errors.js';
import type { Health } from '../health.js';
import type { Identity, IdentityProvider, ProviderRole } from './port.js';

const roleSchema = z.enum(['viewer', 'operator', 'approver', 'admin']);
const rolesClaimSchema = z.record(z.string().min(1), z.unknown());

/** Options of the Firebase identity provider. */
export interface FirebaseIdentityProviderOptions {
  /** The Firebase project whose ID tokens are accepted (FIREBASE_PROJECT_ID). */
  projectId: string;
  /** Project id a bare `role` claim applies to; default `default`. */
  defaultProjectId?: string;
}

/** Firebase sign-in: firebase-admin verifies ID tokens; roles come from the `role` or `roles` custom claims. */
export class FirebaseIdentityProvider implements IdentityProvider {
  readonly kind = 'firebase' as const;
  private readonly app: App;
  private readonly auth: Auth;
  private readonly projectId: string;
  private readonly defaultProjectId: string;

  constructor(opts: FirebaseIdentityProviderOptions) {
    this.projectId = opts.projectId;
    this.defaultProjectId = opts.defaultProjectId ?? 'default';
    this.app = initializeApp({ projectId: opts.projectId }, `visioninapp-${randomBytes(6).toString('hex')}`);
    this.auth = getAuth(this.app);
  }

  async verifyIdToken(idToken: string): Promise<Identity> {
    if (typeof idToken !== 'string' || idToken.length === 0) {
      throw new PlatformError(
        'unauthenticated',
        'missing Firebase ID token; sign in with Firebase and send the ID token',
      );
    }
    let decoded: DecodedIdToken;
    try {
      // checkRevoked: a disabled user, or one whose tokens were revoked, is refused even with an unexpired token
      decoded = await this.auth.verifyIdToken(idToken, true);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'auth/invalid-id-token';
      throw new PlatformError(
        'unauthenticated',
        `Firebase ID token rejected (${code}); sign in again to get a fresh token for project "${this.projectId}"`,
      );
    }
    if (!decoded.email) {
      throw new PlatformError(
        'unauthenticated',
        `Firebase account ${decoded.uid} has no email address; sign in with an email-based account`,
      );
    }
    const identity: Identity = {
      provider: 'firebase',
      subject: decoded.uid,
      email: decoded.email.toLowerCase(),
      emailVerified: decoded.email_verified === true,
      name: typeof decoded.name === 'string' && decoded.name ? decoded.name : decoded.email,
    };
    const roles = this.rolesFromClaims(decoded);
    if (roles) identity.roles = roles;
    return identity;
  }

  async checkSubject(subject: string, sessionStartedAt: number): Promise<void> {
    let user: UserRecord;
    try {
      user = await this.auth.getUser(subject);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code === 'auth/user-not-found')
        throw new PlatformError(
          'unauthenticated',
          'your Firebase account no longer exists; sign in again with an active account',
        );
      throw new PlatformError(
        'unavailable',
        `could not check the Firebase account with project "${this.projectId}" (${code || (err as Error).message}); try again shortly`,
      );
    }
    if (user.disabled)
      throw new PlatformError(
        'unauthenticated',
        'your Firebase account is disabled; ask an administrator to enable it',
      );
    const validAfter = user.tokensValidAfterTime === undefined ? NaN : Date.parse(user.tokensValidAfterTime);
    if (Number.isFinite(validAfter) && validAfter > sessionStartedAt) {
      throw new PlatformError('unauthenticated', 'your Firebase sign-in was revoked; sign in again');
    }
  }

  async health(): Promise<Health> {
    return {
      port: 'auth',
      adapter: 'firebase',
      ok: true,
      detail: `accepting ID tokens of Firebase project "${this.projectId}" (FIREBASE_PROJECT_ID)`,
    };
  }

  async close(): Promise<void> {
    await deleteApp(this.app);
  }

  // `roles` (projectId → role) wins over `role` (the default project); unknown role names are ignored.
  private rolesFromClaims(claims: DecodedIdToken): Record<string, ProviderRole> | undefined {
    const out: Record<string, ProviderRole> = {};
    const single = roleSchema.safeParse(claims.role);
    if (single.success) out[this.defaultProjectId] = single.data;
    const map = rolesClaimSchema.safeParse(claims.roles);
    if (map.success) {
      for (const [projectId, value] of Object.entries(map.data)) {
        const role = roleSchema.safeParse(value);
        if (role.success) out[projectId] = role.data;
      }
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
}
