import type { Principal, Role } from '../../core/context.js';

/** The project every installation starts with. */
export const DEFAULT_PROJECT_ID = 'default';
/** The account `bootstrapAdmin` creates on first start. */
export const BOOTSTRAP_ADMIN_EMAIL = 'admin@visioninapp.local';

/** A project: datasets, models, jobs, devices and roles belong to one. */
export interface Project {
  id: string;
  name: string;
  createdAt: number;
}

/** A user account (never carries the password hash). */
export interface User {
  id: string;
  email: string;
  name: string;
  provider: 'local' | 'firebase';
  disabled: boolean;
  createdAt: number;
}

/** A user's membership in a project. */
export interface Member {
  userId: string;
  email: string;
  name: string;
  role: Role;
  since: number;
}

/** What a successful login hands the front end; the session token is shown only here. */
export interface LoginResult {
  sessionToken: string;
  expiresAt: number;
  user: User;
}

/** What an API token is created with (AccountService.createApiToken). */
export interface ApiTokenInput {
  userId: string;
  projectId: string;
  name: string;
  role: Role;
  scopes: string[];
  expiresInDays?: number;
}

/** An API token as listed (never its secret or hash). */
export interface ApiTokenInfo {
  id: string;
  name: string;
  userId: string;
  projectId: string;
  role: Role;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/** A principal authenticated by an API token, with the project and token it came from. */
export interface TokenPrincipal extends Principal {
  kind: 'token';
  scopes: string[];
  projectId: string;
  tokenId: string;
}

/**
 * Per-account sign-in lockout: after `maxFailures` wrong passwords for one email within `windowMs`,
 * sign-in for that email is refused for `lockMs`, doubling with each further failure up to `maxLockMs`.
 */
export interface LoginLockout {
  maxFailures: number;
  windowMs: number;
  lockMs: number;
  maxLockMs: number;
}

/** Defaults: 5 failures in 15 minutes lock the account for 1 minute, then 2, 4, … up to 1 hour. */
export const DEFAULT_LOGIN_LOCKOUT: LoginLockout = {
  maxFailures: 5,
  windowMs: 15 * 60_000,
  lockMs: 60_000,
  maxLockMs: 3_600_000,
};
