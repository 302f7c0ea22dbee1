export { AccountService } from './account.service.js';
export { BOOTSTRAP_ADMIN_EMAIL, DEFAULT_LOGIN_LOCKOUT, DEFAULT_PROJECT_ID } from './model.js';
export { ChatLinkService } from './chat-link.service.js';
export type {
  ChatIdentity,
  ChatLink,
  ChatLinkActor,
  ChatLinkServiceOptions,
  PendingChatLink,
} from './chat-link.service.js';
export type { AccountServiceOptions } from './account.service.js';
export type {
  ApiTokenInfo,
  ApiTokenInput,
  LoginLockout,
  LoginResult,
  Member,
  Project,
  TokenPrincipal,
  User,
} from './model.js';
export type {
  AccountEvent,
  ApiTokenEvent,
  LoginEvent,
  LoginFailedEvent,
  RoleChangedEvent,
  UserCreatedEvent,
} from './events.js';
export { MembershipService } from './membership.service.js';
export type { MembershipAccounts, MembershipServiceOptions, ProjectSummary } from './membership.service.js';
