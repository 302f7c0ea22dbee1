import { z } from 'zod';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { Principal } from '../../core/context.js';
import type { ApprovalRow } from './approval.rows.js';
import { refusalReason, type ApprovalPolicy } from './policy.js';

/** Why `user` may not decide a request with this policy (undefined: they may); a requester may always reject their own request, unless a viewer. */
export function decisionRefusal(
  policy: ApprovalPolicy,
  user: Principal,
  row: ApprovalRow,
  decision: 'approve' | 'reject' | 'edit',
): string | undefined {
  const self = user.userId === row.requester_id;
  return decision === 'reject' && self && user.role !== 'viewer'
    ? undefined
    : refusalReason(policy, user, row.requester_id);
}

/** Runs the validator on edited arguments; a refusal becomes `invalid_input` saying the request stays pending. */
export function validatedEdit(
  tool: string,
  args: unknown,
  validate: ((args: unknown) => unknown) | undefined,
): unknown {
  try {
    return validate === undefined ? args : validate(args);
  } catch (err) {
    const message =
      err instanceof PlatformError
        ? err.message
        : err instanceof z.ZodError
          ? describeZodError(err)
          : (err as Error).message;
    throw new PlatformError(
      'invalid_input',
      `edited arguments for ${tool} are invalid: ${message}; the request stays pending`,
    );
  }
}

/** No request by that id in the project: the step needs an approval first. */
export function missingRefusal(id: string, projectId: string): PlatformError {
  return new PlatformError(
    'approval_required',
    `no approval "${id}" in project "${projectId}"; ask for approval before running this step`,
  );
}

/**
 * Why an approval cannot be used for this execution: not approved (yet), expired, used, for
 * another tool, another conversation or other arguments. Undefined when it can.
 */
export function consumeRefusal(
  row: ApprovalRow,
  want: { tool: string; hash: string; threadId: string | null; now: number },
): PlatformError | undefined {
  const id = row.id;
  switch (row.status) {
    case 'pending':
      return Number(row.expires_at) <= want.now
        ? new PlatformError(
            'approval_required',
            `approval ${id} expired before anyone decided; ask for approval again`,
          )
        : new PlatformError(
            'approval_required',
            `approval ${id} for ${row.tool} is still waiting for a decision`,
          );
    case 'rejected':
      return new PlatformError(
        'forbidden',
        `approval ${id} for ${row.tool} was rejected by ${row.decided_by_name ?? row.decided_by ?? 'someone'}${row.decision_reason ? `: ${row.decision_reason}` : ''}`,
      );
    case 'executed':
      return new PlatformError(
        'conflict',
        `approval ${id} was already used at ${new Date(Number(row.consumed_at)).toISOString()}; an approval runs its tool once`,
      );
    case 'expired':
      return new PlatformError('approval_required', `approval ${id} expired; ask for approval again`);
    case 'approved':
      break;
  }
  if (Number(row.expires_at) <= want.now) {
    return new PlatformError(
      'approval_required',
      `approval ${id} expired at ${new Date(Number(row.expires_at)).toISOString()}; ask for approval again`,
    );
  }
  if (row.tool !== want.tool)
    return new PlatformError(
      'forbidden',
      `approval ${id} is for tool ${row.tool}, not ${want.tool}; ask for approval of ${want.tool}`,
    );
  if (row.thread_id !== null && row.thread_id !== want.threadId) {
    return new PlatformError(
      'forbidden',
      `approval ${id} belongs to another conversation; ask for approval in this one`,
    );
  }
  const approvedHash = row.edited_args_hash ?? row.args_hash;
  if (approvedHash !== want.hash) {
    return new PlatformError(
      'forbidden',
      `the arguments of ${want.tool} differ from the approved ones (approved hash ${approvedHash.slice(0, 12)}…, got ${want.hash.slice(0, 12)}…); run it with the approved arguments or ask again`,
      { approvedArgsHash: approvedHash, argsHash: want.hash },
    );
  }
  return undefined;
}
