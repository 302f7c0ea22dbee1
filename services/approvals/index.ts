export { ApprovalService, actorOf } from './approval.service.js';
export type {
  ApprovalConsumeInput,
  ApprovalDecisionInput,
  ApprovalDecisionRecord,
  ApprovalRequest,
  ApprovalRequestInput,
  ApprovalServiceOptions,
  ApprovalStatus,
} from './approval.service.js';
export { argsHash, canonicalJson, sha256Hex } from './canonical-json.js';
export type { ApprovalDecidedEvent, ApprovalEvent, ApprovalRequestedEvent } from './events.js';
export { policyFor, refusalReason, RISKS } from './policy.js';
export type { ApprovalPolicy, Risk } from './policy.js';
