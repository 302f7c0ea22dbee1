import type { Health } from '../health.js';

/** Roles as identity providers may state them (Firebase custom claims, local memberships). */
export type ProviderRole = 'viewer' | 'operator' | 'approver' | 'admin';

/** A verified identity, before the platform maps it to a user and project roles. */
export interface Identity {
  provider: 'local' | 'firebase';
  /** Stable id at the provider (local user id, Firebase uid). */
  subject: string;
  email: string;
  name: string;
  /** Roles per project id stated by the provider (Firebase custom claims `roles` or `role`), if any. */
  roles?: Record<string, ProviderRole>;
}

/** The identity port: local accounts (scrypt passwords in the database) or Firebase ID tokens. */
export interface IdentityProvider {
  readonly kind: 'local' | 'firebase';
  /** Local mode: checks an email and password. Throws `unauthenticated` on a mismatch. */
  verifyPassword?(email: string, password: string): Promise<Identity>;
  /** Firebase mode: verifies an ID token (signature, expiry, audience). Throws `unauthenticated`. */
  verifyIdToken?(idToken: string): Promise<Identity>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
