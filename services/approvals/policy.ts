import { roleAtLeast, type Principal, type Role } from '../../core/context.js';

/** How much a tool call can change: reads change nothing; critical ones reach production or delete. */
export const RISKS = ['read', 'write', 'critical'] as const;
export type Risk = (typeof RISKS)[number];

/** Who may approve a request of a given risk, as data shown beside every request. */
export interface ApprovalPolicy {
  risk: Risk;
  /** False for reads: the tool may run without an approval (one is granted when asked for anyway). */
  required: boolean;
  /** The lowest role that may approve. */
  minRole: Role;
  /** Whether the requester may approve their own request. */
  selfApproval: boolean;
  /** Whether APPROVAL_STRICT was on when the policy was taken. */
  strict: boolean;
  /** The rule in one sentence, for people. */
  summary: string;
}

/** The approval policy of a risk level; `strict` forbids self-approval of critical steps. */
export function policyFor(risk: Risk, strict: boolean): ApprovalPolicy {
  switch (risk) {
    case 'read':
      return {
        risk,
        required: false,
        minRole: 'viewer',
        selfApproval: true,
        strict,
        summary: 'read-only: no approval needed',
      };
    case 'write':
      return {
        risk,
        required: true,
        minRole: 'operator',
        selfApproval: true,
        strict,
        summary:
          'changes state: an operator, approver or admin approves (the requester may approve their own)',
      };
    case 'critical':
      return strict
        ? {
            risk,
            required: true,
            minRole: 'approver',
            selfApproval: false,
            strict,
            summary:
              'critical (deploy, rollback, delete, promote to production): an approver or admin other than the requester approves',
          }
        : {
            risk,
            required: true,
            minRole: 'approver',
            selfApproval: true,
            strict,
            summary:
              'critical (deploy, rollback, delete, promote to production): an approver or admin approves',
          };
  }
}

/** Why `user` may not decide on a request under `policy`, or undefined when they may. */
export function refusalReason(
  policy: ApprovalPolicy,
  user: Principal,
  requesterId: string,
): string | undefined {
  const self = user.userId === requesterId;
  if (policy.risk !== 'read' && user.role === 'viewer')
    return 'viewers never approve; ask an operator, approver or admin';
  if (policy.risk === 'read' && !self && !roleAtLeast(user.role, 'operator'))
    return 'only the requester or an operator may approve this read';
  if (!roleAtLeast(user.role, policy.minRole)) {
    return `a ${policy.risk} step needs the ${policy.minRole} role or above; you are ${user.role}`;
  }
  if (self && !policy.selfApproval)
    return 'strict mode: someone other than the requester must approve a critical step';
  return undefined;
}
