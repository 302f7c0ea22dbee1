import { EventBus } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import type { Db } from '../services/infra/db/index.js';
import type { ToolServices } from './services.js';

/**
 * A full `ToolServices` from the services a test (or a simulation) uses: each one it does not
 * give is a fake whose every method throws "not used in this test", so a tool reaching a service
 * the test did not expect fails loudly instead of silently doing nothing.
 */
export function toolServicesFixture(used: Partial<ToolServices>): ToolServices {
  const unused = <K extends keyof ToolServices>(name: K): ToolServices[K] =>
    new Proxy(
      {},
      {
        get: (_target, method) => () => {
          throw new Error(
            `services.${name}.${String(method)} is not used in this test; pass it to toolServicesFixture`,
          );
        },
      },
    ) as ToolServices[K];
  return {
    approvals: used.approvals ?? unused('approvals'),
    audit: used.audit ?? unused('audit'),
    approvalStrict: used.approvalStrict ?? false,
    search: used.search ?? unused('search'),
    datasets: used.datasets ?? unused('datasets'),
    training: used.training ?? unused('training'),
    models: used.models ?? unused('models'),
    evaluations: used.evaluations ?? unused('evaluations'),
    fleet: used.fleet ?? unused('fleet'),
    rollouts: used.rollouts ?? unused('rollouts'),
    feedback: used.feedback ?? unused('feedback'),
    retrain: used.retrain ?? unused('retrain'),
    members: used.members ?? unused('members'),
  };
}

/** The audit log and approval service the tools run under, on `db` (not strict, requests live an hour). */
export function governanceFixture(db: Db, log: Logger): { audit: AuditLog; approvals: ApprovalService } {
  const audit = new AuditLog({ db, log });
  const approvals = new ApprovalService({
    db,
    audit,
    events: new EventBus<ApprovalEvent>(),
    log,
    strict: false,
    ttlMs: 3_600_000,
  });
  return { audit, approvals };
}
