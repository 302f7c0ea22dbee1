import type { Health } from '../health.js';

/** Roles as identity providers may state them (Firebase custom claims, local memberships). */
export type ProviderRole = 'viewer' | 'operator' | 'approver' | 'admin';

/** A verified identity, before the platform maps it to a user and project roles. */
export interface Identity {
  provider: 'local' | 'firebase';
  /** Stable id at the provider (local user id, Firebase uid). */
  subject: string;
  email: string;
  /** Whether the provider verified that the person owns `email` (Firebase `email_verified`); absent for local accounts, which an admin creates. */
  emailVerified?: boolean;
  name: string;
  /** Roles per project id stated by the provider (Firebase custom claims `roles` or `role`), if any. */
  roles?: Record<string, ProviderRole>;
}

/** The identity port: local accounts (scrypt passwords in the database) or Firebase ID tokens. */
export interface IdentityProvider {
  readonly kind: 'local' | 'firebase';
  /** Local mode: checks an email and password. Throws `unauthenticated` on a mismatch. */
  verifyPassword?(email: string, password: string): Promise<Identity>;
  /** Firebase mode: verifies an ID token (signature, expiry, audience, not revoked, user not disabled). Throws `unauthenticated`. */
  verifyIdToken?(idToken: string): Promise<Identity>;
  /**
   * Firebase mode: checks that the subject may still sign in, for a platform session opened at
   * `sessionStartedAt` (epoch ms): throws `unauthenticated` when the user is gone or disabled, or their
   * tokens were revoked after that time; `unavailable` when the provider cannot be asked.
   */
  checkSubject?(subject: string, sessionStartedAt: number): Promise<void>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
