import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallContext, Role } from '../../core/context.js';
import { isPlatformError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { LocalIdentityProvider } from '../infra/auth/local.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { AccountService } from './account.service.js';
import { MembershipService } from './membership.service.js';

describe(MembershipService.name, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vmembers-'));
  const db = new SqliteDb({ file: path.join(dir, 'members.db') });
  const accounts = new AccountService({
    db,
    identity: new LocalIdentityProvider({ db }),
    log: silentLogger(),
  });
  const sut = new MembershipService({ db, accounts });
  const ctxs: Record<string, CallContext> = {};

  beforeAll(async () => {
    await db.migrate();
    await accounts.ensureDefaultProject();
    for (const role of ['admin', 'viewer'] as Role[]) {
      const u = await accounts.createUser({
        email: `${role}@x.test`,
        name: role,
        role,
        projectId: 'default',
      });
      ctxs[role] = {
        user: { userId: u.id, email: u.email, name: u.name, role, kind: 'user' },
        projectId: 'default',
        requestId: 'r',
        log: silentLogger(),
      };
    }
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets an admin add a new person with a role, then change it; the members list shows names and roles', async () => {
    const added = await sut.setMemberRole(ctxs.admin!, {
      email: 'Kim@X.test',
      name: 'Kim',
      role: 'operator',
    });
    expect(added).toMatchObject({ email: 'kim@x.test', name: 'Kim', role: 'operator', created: true });
    const changed = await sut.setMemberRole(ctxs.admin!, { email: 'kim@x.test', role: 'approver' });
    expect(changed).toMatchObject({ role: 'approver', created: false });
    const members = await sut.members(ctxs.viewer!);
    expect(members.map((m) => [m.name, m.role])).toEqual([
      ['admin', 'admin'],
      ['Kim', 'approver'],
      ['viewer', 'viewer'],
    ]);
  });

  it('refuses a viewer adding people or creating a project, and changes nothing', async () => {
    await expect(sut.setMemberRole(ctxs.viewer!, { email: 'eve@x.test', role: 'admin' })).rejects.toSatisfy(
      (e) => isPlatformError(e, 'forbidden'),
    );
    await expect(sut.createProject(ctxs.viewer!, { id: 'plant-9', name: 'Plant 9' })).rejects.toSatisfy((e) =>
      isPlatformError(e, 'forbidden'),
    );
    expect((await sut.members(ctxs.admin!)).some((m) => m.email === 'eve@x.test')).toBe(false);
    expect((await sut.projects(ctxs.admin!)).map((p) => p.id)).toEqual(['default']);
  });

  it('creates a project with the admin as its first admin, once; a taken id or a bad one is refused clearly', async () => {
    const p = await sut.createProject(ctxs.admin!, { id: 'plant-2', name: 'Plant 2' });
    expect(p).toMatchObject({ id: 'plant-2', name: 'Plant 2', role: 'admin', members: 1 });
    // the approved call retried after a crash finds its own project
    expect(await sut.createProject(ctxs.admin!, { id: 'plant-2', name: 'Plant 2' })).toMatchObject({
      id: 'plant-2',
    });
    const other = { ...ctxs.admin!, user: { ...ctxs.admin!.user, userId: 'usr_other' } };
    await expect(sut.createProject(other, { id: 'plant-2', name: 'x' })).rejects.toThrow(/already exists/);
    await expect(sut.createProject(ctxs.admin!, { id: 'Plant 3', name: 'x' })).rejects.toThrow(
      /invalid project: id lowercase letters/,
    );
    expect((await sut.projects(ctxs.admin!)).map((q) => [q.name, q.role, q.members])).toEqual([
      ['Plant 2', 'admin', 1],
      ['default', 'admin', 3],
    ]);
  });
});
