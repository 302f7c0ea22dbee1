import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../../test/services.fixtures.js';
import { AuditLog } from '../audit/audit-log.js';
import type { CallContext, Role } from '../../core/context.js';
import { EventBus } from '../../core/events.js';
import { MysqlDb } from '../infra/db/mysql.js';
import { silentLogger } from '../../core/log.js';
import { ApprovalService } from './approval.service.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

function ctxFor(userId: string, role: Role): CallContext {
  return {
    user: { userId, email: `${userId}@x.test`, name: userId, role, kind: 'user' },
    projectId: 'p1',
    requestId: 'r',
    threadId: 't1',
    log: silentLogger(),
  };
}

describe.skipIf(skip)('ApprovalService on MySQL, two platform instances', () => {
  let temp: { url: string; drop: () => Promise<void> };
  let dbs: MysqlDb[];
  let services: ApprovalService[];
  let audit: AuditLog;

  beforeAll(async () => {
    temp = await createTempMysqlDatabase();
    dbs = [new MysqlDb({ url: temp.url }), new MysqlDb({ url: temp.url })];
    await dbs[0]!.migrate();
    services = dbs.map(
      (db) =>
        new ApprovalService({
          db,
          audit: new AuditLog({ db, log: silentLogger() }),
          events: new EventBus(),
          log: silentLogger(),
          strict: true,
          ttlMs: 60_000,
        }),
    );
    audit = new AuditLog({ db: dbs[0]!, log: silentLogger() });
  });
  afterAll(async () => {
    for (const db of dbs ?? []) await db.close();
    await temp?.drop();
  });

  const op = ctxFor('u_op', 'operator');
  const deploy = {
    tool: 'start_rollout',
    args: { model: 'helmets@2', target: 'line-3' },
    risk: 'critical' as const,
    reason: 'deploy',
  };

  it('creates one request for identical concurrent asks', async () => {
    const results = await Promise.all(
      services.flatMap((s) => [s.request(op, { ...deploy, step: 1 }), s.request(op, { ...deploy, step: 1 })]),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
  });

  it('settles concurrent decisions on one and runs the approval exactly once', async () => {
    const [a, b] = services as [ApprovalService, ApprovalService];
    const req = await a.request(op, { ...deploy, step: 2 });
    const [d1, d2] = await Promise.all([
      a.decide(ctxFor('u_a1', 'approver'), req.id, { decision: 'approve' }),
      b.decide(ctxFor('u_a2', 'approver'), req.id, { decision: 'approve' }),
    ]);
    expect(d1).toEqual(d2);
    const runs = await Promise.allSettled([
      a.consume(op, { approvalId: req.id, tool: deploy.tool, args: deploy.args }),
      b.consume(op, { approvalId: req.id, tool: deploy.tool, args: deploy.args }),
      a.consume(op, { approvalId: req.id, tool: deploy.tool, args: deploy.args }),
      b.consume(op, { approvalId: req.id, tool: deploy.tool, args: deploy.args }),
    ]);
    expect(runs.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await audit.query({ projectId: 'p1', action: 'approval.decided', limit: 1000 })).total).toBe(1);
    expect((await audit.query({ projectId: 'p1', action: 'approval.consumed', limit: 1000 })).total).toBe(1);
    expect((await audit.verify('p1')).ok).toBe(true);
  });

  it('refuses self-approval in strict mode and a replay with other arguments', async () => {
    const [a] = services as [ApprovalService];
    const approver = ctxFor('u_a1', 'approver');
    const own = await a.request(approver, { ...deploy, step: 3 });
    await expect(a.decide(approver, own.id, { decision: 'approve' })).rejects.toMatchObject({
      code: 'forbidden',
    });
    await a.decide(ctxFor('u_a2', 'approver'), own.id, { decision: 'approve' });
    await expect(
      a.consume(approver, { approvalId: own.id, tool: deploy.tool, args: { ...deploy.args, target: 'all' } }),
    ).rejects.toMatchObject({ code: 'forbidden' });
  });
});
