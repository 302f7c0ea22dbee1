import type { DomainEventBase } from '../../core/events.js';
import type { Role } from '../../core/context.js';

/** A user account was created (admin bootstrap, createUser, first Firebase sign-in). */
export interface UserCreatedEvent extends DomainEventBase {
  type: 'accounts.user_created';
  userId: string;
  email: string;
  role: Role;
}

/** A user's role in a project was set or changed. */
export interface RoleChangedEvent extends DomainEventBase {
  type: 'accounts.role_changed';
  userId: string;
  role: Role;
  previous?: Role;
}

/** Someone signed in (password or Firebase ID token); audit subscribes to it. */
export interface LoginEvent extends DomainEventBase {
  type: 'accounts.login';
  userId: string;
  email: string;
  method: 'password' | 'firebase';
}

/** A sign-in attempt failed; the email is what was typed, which may not exist. */
export interface LoginFailedEvent extends DomainEventBase {
  type: 'accounts.login_failed';
  email: string;
}

/** A session was ended (sign-out); open sockets of that user are checked again at once. */
export interface LogoutEvent extends DomainEventBase {
  type: 'accounts.logout';
  userId: string;
}

/** An API token was created or revoked. */
export interface ApiTokenEvent extends DomainEventBase {
  type: 'accounts.token_created' | 'accounts.token_revoked';
  tokenId: string;
  userId: string;
}

/** Every event the accounts domain emits. */
export type AccountEvent =
  UserCreatedEvent | RoleChangedEvent | LoginEvent | LoginFailedEvent | LogoutEvent | ApiTokenEvent;
