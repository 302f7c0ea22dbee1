import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallContext, Role } from '../../core/context.js';
import { EventBus } from '../../core/events.js';
import { silentLogger } from '../../core/log.js';
import { AuditLog } from '../audit/audit-log.js';
import { MemoryCache } from '../infra/cache/memory.js';
import { ReadCache } from '../infra/cache/read-cache.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { invalidateReadsOn } from '../read-invalidation.js';
import { ApprovalService } from './approval.service.js';
import type { ApprovalEvent } from './events.js';

const HOUR = 3_600_000;

const ctxFor = (userId: string, role: Role): CallContext => ({
  user: { userId, email: `${userId}@example.test`, name: userId, role, kind: 'user' },
  projectId: 'p1',
  requestId: `req-${userId}`,
  threadId: 't1',
  log: silentLogger(),
});

describe('ApprovalService lists through the read cache', () => {
  let dir: string;
  let db: SqliteDb;
  let clock: number;
  let reads: ReadCache;
  let stop: () => void;
  const op = ctxFor('u_op', 'operator');
  const approver = ctxFor('u_appr', 'approver');
  const approver2 = ctxFor('u_appr2', 'approver');
  const train = {
    tool: 'start_training',
    args: { dataset: 'helmets-v2', epochs: 10 },
    risk: 'write' as const,
    reason: 'train the detector',
  };
  const deploy = {
    tool: 'start_rollout',
    args: { model: 'helmets@2', target: 'line-3' },
    risk: 'critical' as const,
    reason: 'deploy to line 3',
  };

  function make(opts: { strict?: boolean } = {}): ApprovalService {
    const bus = new EventBus<ApprovalEvent>();
    stop = invalidateReadsOn(bus, reads, silentLogger());
    const audit = new AuditLog({ db, log: silentLogger(), now: () => clock });
    return new ApprovalService({
      db,
      audit,
      events: bus,
      log: silentLogger(),
      strict: opts.strict ?? false,
      ttlMs: HOUR,
      now: () => clock,
      reads,
    });
  }
  const ids = async (sut: ApprovalService, status?: 'pending' | 'approved' | 'rejected' | 'executed') =>
    (await sut.list(op, status === undefined ? {} : { status })).map((a) => `${a.tool}:${a.status}`);

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'appr-reads-'));
    db = new SqliteDb({ file: path.join(dir, 'a.db') });
    await db.migrate();
    clock = 1_700_000_000_000;
    reads = new ReadCache({ cache: new MemoryCache(), now: () => clock });
  });
  afterEach(async () => {
    stop();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a repeated list from the cache (a row removed behind the service stays listed until an event says otherwise)', async () => {
    const sut = make();
    await sut.request(op, train);
    expect(await ids(sut, 'pending')).toEqual(['start_training:pending']);
    await db.kysely.deleteFrom('approvals').execute();
    expect(await ids(sut, 'pending')).toEqual(['start_training:pending']);
    expect(reads.stats().hits).toBe(1);
    await sut.request(op, deploy);
    expect(await ids(sut, 'pending')).toEqual(['start_rollout:pending']);
  });

  it('is never stale after a request, a decision, a rejection or a use', async () => {
    const sut = make();
    expect(await ids(sut, 'pending')).toEqual([]);
    const a = await sut.request(op, train);
    expect(await ids(sut, 'pending')).toEqual(['start_training:pending']);
    expect(await ids(sut, 'approved')).toEqual([]);
    await sut.decide(op, a.id, { decision: 'approve' });
    expect(await ids(sut, 'pending')).toEqual([]);
    expect(await ids(sut, 'approved')).toEqual(['start_training:approved']);
    await sut.consume(op, { approvalId: a.id, tool: train.tool, args: train.args });
    expect(await ids(sut, 'approved')).toEqual([]);
    expect(await ids(sut, 'executed')).toEqual(['start_training:executed']);
    const b = await sut.request(op, deploy);
    expect(await ids(sut)).toEqual(['start_rollout:pending', 'start_training:executed']);
    await sut.decide(approver, b.id, { decision: 'reject', reason: 'not today' });
    expect(await ids(sut, 'pending')).toEqual([]);
    expect(await ids(sut, 'rejected')).toEqual(['start_rollout:rejected']);
    expect(await ids(sut)).toEqual(['start_rollout:rejected', 'start_training:executed']);
  });

  it('is never stale after an edit under four-eyes rules (the original closes, the edited call waits)', async () => {
    const sut = make({ strict: true });
    const a = await sut.request(op, deploy);
    expect(await ids(sut, 'pending')).toEqual(['start_rollout:pending']);
    await sut.decide(approver, a.id, { decision: 'edit', args: { model: 'helmets@3', target: 'line-3' } });
    const pending = await sut.list(op, { status: 'pending' });
    expect(pending.map((p) => p.args)).toEqual([{ model: 'helmets@3', target: 'line-3' }]);
    await sut.decide(approver2, pending[0]!.id, { decision: 'approve' });
    expect(await ids(sut, 'pending')).toEqual([]);
  });

  it('drops a request from the pending list when it expires, with no event, and keeps listing it as expired', async () => {
    const sut = make();
    await sut.request(op, train);
    expect(await ids(sut, 'pending')).toEqual(['start_training:pending']);
    expect(await ids(sut)).toEqual(['start_training:pending']);
    clock += HOUR;
    expect(await ids(sut, 'pending')).toEqual([]);
    expect(await ids(sut)).toEqual(['start_training:expired']);
    expect((await sut.list(op, { status: 'expired' })).length).toBe(1);
  });
});
