export { ApprovalService, actorOf } from './approval.service.js';
export type { ApprovalServiceOptions } from './approval.service.js';
export type {
  ApprovalConsumeInput,
  ApprovalDecisionInput,
  ApprovalDecisionRecord,
  ApprovalRequest,
  ApprovalRequestInput,
  ApprovalStatus,
} from './model.js';
export { argsHash, canonicalJson, sha256Hex } from './canonical-json.js';
export type { ApprovalDecidedEvent, ApprovalEvent, ApprovalRequestedEvent } from './events.js';
export { policyFor, refusalReason, RISKS } from './policy.js';
export type { ApprovalPolicy, Risk } from './policy.js';
