import type { DomainEventBase } from '../../core/events.js';
import type { ApprovalRequest } from './model.js';

/** A tool call now waits for someone to approve it. */
export interface ApprovalRequestedEvent extends DomainEventBase {
  type: 'approval.requested';
  approval: ApprovalRequest;
}

/** Someone approved, edited or rejected a request. */
export interface ApprovalDecidedEvent extends DomainEventBase {
  type: 'approval.decided';
  approval: ApprovalRequest;
}

/** An approved request was used: its tool started (status `executed`). */
export interface ApprovalConsumedEvent extends DomainEventBase {
  type: 'approval.consumed';
  approval: ApprovalRequest;
}

/** Every event the approvals domain emits. */
export type ApprovalEvent = ApprovalRequestedEvent | ApprovalDecidedEvent | ApprovalConsumedEvent;
