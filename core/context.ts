import type { Logger } from './log.js';
import { PlatformError } from './errors.js';

/** Roles in increasing order of power; a role can do everything the ones before it can. */
export const ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** True when `role` is at least `needed`. */
export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** Who is acting: a person (session, Firebase) or a machine (API token). */
export interface Principal {
  userId: string;
  email: string;
  name: string;
  /** Role in `projectId` of the call context. */
  role: Role;
  kind: 'user' | 'token' | 'system';
  /** Token scopes when kind is `token`. */
  scopes?: string[];
}

/** The per-call context passed down explicitly from every front end. */
export interface CallContext {
  user: Principal;
  projectId: string;
  requestId: string;
  threadId?: string;
  signal?: AbortSignal;
  log: Logger;
  /** Set on approved tool calls (the approval id): services that create things record it and return the earlier result on a retry. */
  idempotencyKey?: string;
}

/** The platform itself acting (migrations, controllers, demo set-up). */
export function systemPrincipal(): Principal {
  return {
    userId: 'system',
    email: 'system@visioninapp.local',
    name: 'VisionInApp',
    role: 'admin',
    kind: 'system',
  };
}

/** Throws `forbidden` unless the caller's role is at least `needed`; `what` names the action ("starting training"). */
export function requireRole(ctx: Pick<CallContext, 'user'>, needed: Role, what: string): void {
  if (!roleAtLeast(ctx.user.role, needed))
    throw new PlatformError(
      'forbidden',
      `${what} needs the ${needed} role or above; you are ${ctx.user.role}`,
    );
}
