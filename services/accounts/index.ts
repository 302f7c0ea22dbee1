export { AccountService, BOOTSTRAP_ADMIN_EMAIL, DEFAULT_PROJECT_ID } from './account.service.js';
export { ChatLinkService } from './chat-link.service.js';
export type {
  ChatIdentity,
  ChatLink,
  ChatLinkActor,
  ChatLinkServiceOptions,
  PendingChatLink,
} from './chat-link.service.js';
export type {
  AccountServiceOptions,
  ApiTokenInfo,
  LoginResult,
  Member,
  Project,
  TokenPrincipal,
  User,
} from './account.service.js';
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
