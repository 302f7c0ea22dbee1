import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AuditLog } from '../audit/audit-log.js';
import type { CallContext, Role } from '../../core/context.js';
import { isPlatformError, PlatformError, type ErrorCode } from '../../core/errors.js';
import { EventBus } from '../../core/events.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import { ApprovalService } from './approval.service.js';
import { argsHash, canonicalJson } from './canonical-json.js';
import type { ApprovalEvent } from './events.js';
import { policyFor } from './policy.js';

const HOUR = 3_600_000;

function ctxFor(
  userId: string,
  role: Role,
  opts: { projectId?: string; threadId?: string } = {},
): CallContext {
  return {
    user: { userId, email: `${userId}@example.test`, name: userId, role, kind: 'user' },
    projectId: opts.projectId ?? 'p1',
    requestId: `req-${userId}`,
    ...(opts.threadId === undefined ? {} : { threadId: opts.threadId }),
    log: silentLogger(),
  };
}

const rejectsWith = (code: ErrorCode, message?: RegExp) => (err: unknown) =>
  isPlatformError(err, code) && (message === undefined || message.test(err.message));

describe('canonicalJson', () => {
  it('sorts keys at every depth, drops undefined and writes numbers one way', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, undefined, 'x'], c: 2.0 }, e: undefined })).toBe(
      '{"a":{"c":2,"d":[1,null,"x"]},"b":1}',
    );
    expect(argsHash({ epochs: 10, dataset: 'helmets-v2' })).toBe(
      argsHash({ dataset: 'helmets-v2', epochs: 10.0, note: undefined }),
    );
    expect(argsHash({ epochs: 10 })).not.toBe(argsHash({ epochs: 11 }));
    expect(argsHash({ a: -0 })).toBe(argsHash({ a: 0 }));
    expect(argsHash({})).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses values JSON cannot carry', () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/\$\.x is NaN/);
    expect(() => canonicalJson({ x: Infinity })).toThrow(PlatformError);
    expect(() => canonicalJson({ x: 10n })).toThrow(/bigint/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => canonicalJson(loop)).toThrow(/refers to itself/);
  });
});

describe('policyFor', () => {
  it('is data a person can read', () => {
    expect(policyFor('read', false)).toMatchObject({ required: false });
    expect(policyFor('write', true)).toMatchObject({
      required: true,
      minRole: 'operator',
      selfApproval: true,
    });
    expect(policyFor('critical', false)).toMatchObject({
      required: true,
      minRole: 'approver',
      selfApproval: true,
    });
    expect(policyFor('critical', true)).toMatchObject({
      required: true,
      minRole: 'approver',
      selfApproval: false,
      strict: true,
    });
    expect(policyFor('critical', true).summary).toMatch(/other than the requester/);
  });
});

describe(ApprovalService.name, () => {
  let dir: string;
  let db: SqliteDb;
  let clock: number;
  let audit: AuditLog;
  let events: ApprovalEvent[];
  const op = ctxFor('u_op', 'operator', { threadId: 't1' });
  const approver = ctxFor('u_appr', 'approver', { threadId: 't1' });
  const approver2 = ctxFor('u_appr2', 'approver', { threadId: 't1' });
  const viewer = ctxFor('u_view', 'viewer', { threadId: 't1' });
  const admin = ctxFor('u_admin', 'admin', { threadId: 't1' });
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

  function make(opts: { strict?: boolean; ttlMs?: number } = {}) {
    const bus = new EventBus<ApprovalEvent>();
    bus.on((e) => events.push(e));
    return new ApprovalService({
      db,
      audit,
      events: bus,
      log: silentLogger(),
      strict: opts.strict ?? false,
      ttlMs: opts.ttlMs ?? HOUR,
      now: () => clock,
      validateArgs: (tool, args) => {
        if (tool !== 'start_training') return args;
        return z
          .object({ dataset: z.string(), epochs: z.number().int().min(1).max(100) })
          .strict()
          .parse(args);
      },
    });
  }

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'appr-'));
    db = new SqliteDb({ file: path.join(dir, 'a.db') });
    await db.migrate();
    clock = 1_700_000_000_000;
    audit = new AuditLog({ db, log: silentLogger(), now: () => clock });
    events = [];
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('request', () => {
    it('binds tool, argument hash, requester, thread, step, risk and the policy', async () => {
      const sut = make();
      const req = await sut.request(op, { ...train, step: 1 });
      expect(req).toMatchObject({
        tool: 'start_training',
        argsHash: argsHash(train.args),
        approvedArgsHash: argsHash(train.args),
        requester: { userId: 'u_op', role: 'operator' },
        projectId: 'p1',
        threadId: 't1',
        step: 1,
        risk: 'write',
        status: 'pending',
        expiresAt: clock + HOUR,
        policy: policyFor('write', false),
      });
      expect(events).toEqual([expect.objectContaining({ type: 'approval.requested', projectId: 'p1' })]);
    });

    it('returns the same pending request when asked again for the same call', async () => {
      const sut = make();
      const a = await sut.request(op, { ...train, step: 1 });
      const b = await sut.request(op, { ...train, args: { epochs: 10, dataset: 'helmets-v2' }, step: 1 });
      const [c, d] = await Promise.all([
        sut.request(op, { ...train, step: 1 }),
        sut.request(op, { ...train, step: 1 }),
      ]);
      expect(new Set([a.id, b.id, c.id, d.id]).size).toBe(1);
      expect((await sut.request(op, { ...train, step: 2 })).id).not.toBe(a.id);
      expect((await sut.request(op, { ...train, args: { ...train.args, epochs: 20 }, step: 1 })).id).not.toBe(
        a.id,
      );
      expect(events.filter((e) => e.type === 'approval.requested')).toHaveLength(3);
    });

    it('asks anew once the pending request expired', async () => {
      const sut = make();
      const a = await sut.request(op, train);
      clock += HOUR + 1;
      const b = await sut.request(op, train);
      expect(b.id).not.toBe(a.id);
      expect((await sut.get(op, a.id)).status).toBe('expired');
    });

    it('refuses malformed requests', async () => {
      const sut = make();
      await expect(sut.request(op, { ...train, tool: 'Start Training' })).rejects.toSatisfy(
        rejectsWith('invalid_input', /tool/),
      );
      await expect(sut.request(op, { ...train, reason: ' ' })).rejects.toSatisfy(
        rejectsWith('invalid_input', /reason/),
      );
      await expect(sut.request(op, { ...train, risk: 'deploy' as 'write' })).rejects.toSatisfy(
        rejectsWith('invalid_input', /risk/),
      );
      await expect(sut.request(op, { ...train, args: { x: Number.NaN } })).rejects.toSatisfy(
        rejectsWith('invalid_input', /NaN/),
      );
    });
  });

  describe('decide', () => {
    it('lets an operator approve their own write step; viewers never approve', async () => {
      const sut = make({ strict: true });
      const req = await sut.request(op, train);
      await expect(sut.decide(viewer, req.id, { decision: 'approve' })).rejects.toSatisfy(
        rejectsWith('forbidden', /viewers never approve/),
      );
      const done = await sut.decide(op, req.id, { decision: 'approve', reason: 'looks right' });
      expect(done).toMatchObject({
        status: 'approved',
        decision: { decision: 'approve', by: { userId: 'u_op', role: 'operator' }, reason: 'looks right' },
      });
      expect(events.at(-1)).toMatchObject({ type: 'approval.decided', approval: { id: req.id } });
    });

    it('needs an approver for a critical step', async () => {
      const sut = make();
      const req = await sut.request(op, deploy);
      await expect(sut.decide(op, req.id, { decision: 'approve' })).rejects.toSatisfy(
        rejectsWith('forbidden', /approver role/),
      );
      expect((await sut.decide(approver, req.id, { decision: 'approve' })).status).toBe('approved');
    });

    it('allows self-approval of critical steps only when not strict', async () => {
      const lax = make();
      const own = await lax.request(approver, deploy);
      expect((await lax.decide(approver, own.id, { decision: 'approve' })).status).toBe('approved');

      const strict = make({ strict: true });
      const req = await strict.request(approver, { ...deploy, step: 2 });
      await expect(strict.decide(approver, req.id, { decision: 'approve' })).rejects.toSatisfy(
        rejectsWith('forbidden', /other than the requester/),
      );
      const adminOwn = await strict.request(admin, { ...deploy, step: 3 });
      await expect(strict.decide(admin, adminOwn.id, { decision: 'approve' })).rejects.toSatisfy(
        rejectsWith('forbidden'),
      );
      expect((await strict.decide(approver2, req.id, { decision: 'approve' })).decision?.by.userId).toBe(
        'u_appr2',
      );
    });

    it('lets the requester withdraw (reject) their own request even in strict mode', async () => {
      const sut = make({ strict: true });
      const req = await sut.request(approver, deploy);
      expect((await sut.decide(approver, req.id, { decision: 'reject', reason: 'wrong line' })).status).toBe(
        'rejected',
      );
    });

    it('returns the first decision when deciding twice, without change', async () => {
      const sut = make();
      const req = await sut.request(op, deploy);
      const first = await sut.decide(approver, req.id, { decision: 'reject', reason: 'not today' });
      const second = await sut.decide(approver2, req.id, { decision: 'approve' });
      expect(second).toEqual(first);
      expect(second.decision).toMatchObject({
        decision: 'reject',
        by: { userId: 'u_appr' },
        reason: 'not today',
      });
      const decided = await audit.query({ projectId: 'p1', action: 'approval.decided' });
      expect(decided.total).toBe(1);
      expect(events.filter((e) => e.type === 'approval.decided')).toHaveLength(1);
    });

    it('settles concurrent decisions on one', async () => {
      const sut = make();
      const req = await sut.request(op, deploy);
      const [a, b] = await Promise.all([
        sut.decide(approver, req.id, { decision: 'approve' }),
        sut.decide(approver2, req.id, { decision: 'reject' }),
      ]);
      expect(a).toEqual(b);
      expect((await audit.query({ projectId: 'p1', action: 'approval.decided' })).total).toBe(1);
    });

    it('refuses an expired request and records that it expired', async () => {
      const sut = make();
      const req = await sut.request(op, train);
      clock += HOUR;
      await expect(sut.decide(op, req.id, { decision: 'approve' })).rejects.toSatisfy(
        rejectsWith('conflict', /expired/),
      );
      expect((await sut.get(op, req.id)).status).toBe('expired');
      expect((await audit.query({ projectId: 'p1', action: 'approval.expired' })).total).toBe(1);
    });

    it('validates edited arguments, keeps both hashes, and keeps the request pending when invalid', async () => {
      const sut = make();
      const req = await sut.request(op, train);
      await expect(
        sut.decide(op, req.id, { decision: 'edit', args: { dataset: 'helmets-v2', epochs: 0 } }),
      ).rejects.toSatisfy(rejectsWith('invalid_input', /epochs/));
      await expect(sut.decide(op, req.id, { decision: 'edit' })).rejects.toSatisfy(
        rejectsWith('invalid_input', /new arguments/),
      );
      expect((await sut.get(op, req.id)).status).toBe('pending');
      const edited = await sut.decide(op, req.id, {
        decision: 'edit',
        args: { epochs: 20, dataset: 'helmets-v2' },
        reason: 'more epochs',
      });
      expect(edited).toMatchObject({
        status: 'approved',
        argsHash: argsHash(train.args),
        editedArgsHash: argsHash({ dataset: 'helmets-v2', epochs: 20 }),
        approvedArgs: { dataset: 'helmets-v2', epochs: 20 },
        decision: { decision: 'edit' },
      });
    });

    it('uses a caller-supplied validator over the service one', async () => {
      const sut = make();
      const req = await sut.request(op, deploy);
      const seen: unknown[] = [];
      const edited = await sut.decide(approver, req.id, {
        decision: 'edit',
        args: { model: 'helmets@3', target: 'line-3' },
        validate: (a) => {
          seen.push(a);
          return { ...(a as object), canary: 1 };
        },
      });
      expect(seen).toHaveLength(1);
      expect(edited.approvedArgs).toEqual({ model: 'helmets@3', target: 'line-3', canary: 1 });
    });

    it('does not find requests of another project', async () => {
      const sut = make();
      const req = await sut.request(op, train);
      await expect(
        sut.decide(ctxFor('u_op', 'admin', { projectId: 'p2' }), req.id, { decision: 'approve' }),
      ).rejects.toSatisfy(rejectsWith('not_found'));
      await expect(sut.get(ctxFor('u_op', 'admin', { projectId: 'p2' }), req.id)).rejects.toSatisfy(
        rejectsWith('not_found'),
      );
    });
  });

  describe('consume', () => {
    async function approved(
      sut: ApprovalService,
      input: {
        tool: string;
        args: Record<string, unknown>;
        risk: 'write' | 'critical';
        reason: string;
        step?: number;
      } = train,
    ) {
      const req = await sut.request(op, input);
      return sut.decide(input.risk === 'critical' ? approver : op, req.id, { decision: 'approve' });
    }

    it('runs an approved call once, then refuses a replay', async () => {
      const sut = make();
      const req = await approved(sut);
      const used = await sut.consume(op, {
        approvalId: req.id,
        tool: train.tool,
        args: { epochs: 10, dataset: 'helmets-v2' },
      });
      expect(used).toMatchObject({ status: 'executed', consumedBy: 'u_op', consumedAt: clock });
      await expect(
        sut.consume(op, { approvalId: req.id, tool: train.tool, args: train.args }),
      ).rejects.toSatisfy(rejectsWith('conflict', /already used/));
    });

    it('lets exactly one of two concurrent executions through', async () => {
      const sut = make();
      const req = await approved(sut);
      const results = await Promise.allSettled([
        sut.consume(op, { approvalId: req.id, tool: train.tool, args: train.args }),
        sut.consume(op, { approvalId: req.id, tool: train.tool, args: train.args }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.find((r) => r.status === 'rejected')).toMatchObject({
        reason: expect.objectContaining({ code: 'conflict' }),
      });
    });

    it('refuses other arguments, another tool and another thread', async () => {
      const sut = make();
      const req = await approved(sut);
      await expect(
        sut.consume(op, { approvalId: req.id, tool: train.tool, args: { ...train.args, epochs: 11 } }),
      ).rejects.toSatisfy(rejectsWith('forbidden', /differ from the approved/));
      await expect(
        sut.consume(op, { approvalId: req.id, tool: 'start_rollout', args: train.args }),
      ).rejects.toSatisfy(rejectsWith('forbidden', /for tool start_training/));
      await expect(
        sut.consume(op, { approvalId: req.id, tool: train.tool, args: train.args, threadId: 't2' }),
      ).rejects.toSatisfy(rejectsWith('forbidden', /another conversation/));
      await expect(
        sut.consume(ctxFor('u_op', 'operator', { threadId: 't2' }), {
          approvalId: req.id,
          tool: train.tool,
          args: train.args,
        }),
      ).rejects.toSatisfy(rejectsWith('forbidden', /another conversation/));
      expect((await sut.consume(op, { approvalId: req.id, tool: train.tool, args: train.args })).status).toBe(
        'executed',
      );
      expect((await audit.query({ projectId: 'p1', action: 'approval.refused' })).total).toBe(4);
    });

    it('runs only the edited arguments of an edited approval', async () => {
      const sut = make();
      const req = await sut.request(op, train);
      await sut.decide(op, req.id, { decision: 'edit', args: { dataset: 'helmets-v2', epochs: 20 } });
      await expect(
        sut.consume(op, { approvalId: req.id, tool: train.tool, args: train.args }),
      ).rejects.toSatisfy(rejectsWith('forbidden'));
      expect(
        (
          await sut.consume(op, {
            approvalId: req.id,
            tool: train.tool,
            args: { dataset: 'helmets-v2', epochs: 20 },
          })
        ).status,
      ).toBe('executed');
    });

    it('refuses pending, rejected, expired, unknown and other-project approvals', async () => {
      const sut = make();
      const pending = await sut.request(op, train);
      await expect(
        sut.consume(op, { approvalId: pending.id, tool: train.tool, args: train.args }),
      ).rejects.toSatisfy(rejectsWith('approval_required', /waiting/));
      const rejected = await sut.request(op, deploy);
      await sut.decide(approver, rejected.id, { decision: 'reject', reason: 'not now' });
      await expect(
        sut.consume(op, { approvalId: rejected.id, tool: deploy.tool, args: deploy.args }),
      ).rejects.toSatisfy(rejectsWith('forbidden', /rejected by u_appr: not now/));
      await expect(
        sut.consume(op, { approvalId: 'apr_nope', tool: train.tool, args: train.args }),
      ).rejects.toSatisfy(rejectsWith('approval_required', /no approval/));
      const ok = await approved(sut, { ...train, step: 5 });
      await expect(
        sut.consume(ctxFor('u_op', 'admin', { projectId: 'p2', threadId: 't1' }), {
          approvalId: ok.id,
          tool: train.tool,
          args: train.args,
        }),
      ).rejects.toSatisfy(rejectsWith('approval_required'));
      clock += HOUR;
      await expect(
        sut.consume(op, { approvalId: ok.id, tool: train.tool, args: train.args }),
      ).rejects.toSatisfy(rejectsWith('approval_required', /expired/));
      expect((await sut.get(op, ok.id)).status).toBe('expired');
    });

    it('binds no thread when the request had none', async () => {
      const sut = make();
      const noThread = ctxFor('u_op', 'operator');
      const req = await sut.request(noThread, train);
      await sut.decide(noThread, req.id, { decision: 'approve' });
      expect((await sut.consume(op, { approvalId: req.id, tool: train.tool, args: train.args })).status).toBe(
        'executed',
      );
    });
  });

  it('lists by status and thread, and shows pending ones', async () => {
    const sut = make();
    const a = await sut.request(op, train);
    const b = await sut.request(op, deploy);
    clock += 1;
    const c = await sut.request(ctxFor('u_op', 'operator', { threadId: 't9' }), { ...train, step: 4 });
    await sut.decide(approver, b.id, { decision: 'approve' });
    expect((await sut.pending(op)).map((r) => r.id)).toEqual([c.id, a.id]);
    expect((await sut.list(op, { status: 'approved' })).map((r) => r.id)).toEqual([b.id]);
    expect((await sut.list(op, { threadId: 't9' })).map((r) => r.id)).toEqual([c.id]);
    clock += HOUR;
    expect(await sut.pending(op)).toEqual([]);
    expect((await sut.list(op, { status: 'expired' })).map((r) => r.id).sort()).toEqual(
      [a.id, b.id, c.id].sort(),
    );
  });

  it('audits every request, decision and use in an intact chain', async () => {
    const sut = make();
    const req = await sut.request(op, deploy);
    await sut.decide(approver, req.id, { decision: 'approve', reason: 'ok' });
    await sut.consume(op, { approvalId: req.id, tool: deploy.tool, args: deploy.args });
    const { entries } = await audit.query({ projectId: 'p1', threadId: 't1' });
    expect(entries.map((e) => [e.action, e.actor.id, e.approvalId])).toEqual([
      ['approval.requested', 'u_op', req.id],
      ['approval.decided', 'u_appr', req.id],
      ['approval.consumed', 'u_op', req.id],
      // the run is recorded as started in the same transaction as the consumption
      ['tool.started', 'u_op', req.id],
    ]);
    expect(entries[1]!.data).toMatchObject({
      decision: 'approve',
      role: 'approver',
      argsHash: argsHash(deploy.args),
    });
    expect((await audit.verify('p1')).ok).toBe(true);
  });
});
