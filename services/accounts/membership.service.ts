import { z } from 'zod';
import { requireRole, ROLES, type CallContext, type Role } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import type { Db } from '../infra/db/port.js';
import type { AccountService } from './account.service.js';
import type { Member, Project } from './model.js';

/** A project as its members see it: their role in it and how many people belong to it. */
export interface ProjectSummary extends Project {
  role: Role;
  members: number;
}

/** What membership changes need from the account service. */
export type MembershipAccounts = Pick<AccountService, 'createUser' | 'setRole' | 'listMembers' | 'roleOf'>;

/** Options of {@link MembershipService}. */
export interface MembershipServiceOptions {
  db: Db;
  accounts: MembershipAccounts;
  now?: () => number;
}

const memberInput = z.object({
  email: z.string().trim().toLowerCase().email().max(320),
  name: z.string().trim().min(1).max(200).optional(),
  role: z.enum(ROLES),
});

const projectInput = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lowercase letters, digits and dashes, 2 to 63 characters'),
  name: z.string().trim().min(1).max(200),
});

function parsed<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success)
    throw new PlatformError(
      'invalid_input',
      `invalid ${what}: ${result.error.issues.map((i) => `${i.path.join('.') || what} ${i.message}`).join('; ')}`,
    );
  return result.data;
}

/**
 * Users and roles per project, and projects, for the caller's project: anyone in the project reads
 * its members and their own projects; only an admin of the project adds people, changes roles or
 * creates a project (becoming its first admin). The account service keeps the rules on accounts
 * (unique emails, the last admin cannot be demoted) and emits the events.
 */
export class MembershipService {
  private readonly now: () => number;

  constructor(private readonly opts: MembershipServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The members of the caller's project with their roles, ordered by email. */
  async members(ctx: CallContext): Promise<Member[]> {
    return this.opts.accounts.listMembers(ctx.projectId);
  }

  /** Gives a person a role in the caller's project: adds them (creating the account for a new email) or changes their role. */
  async setMemberRole(
    ctx: CallContext,
    input: { email: string; name?: string; role: Role },
  ): Promise<Member & { created: boolean }> {
    requireRole(ctx, 'admin', 'adding people to a project or changing their role');
    const data = parsed(memberInput, input, 'member');
    const existing = await this.opts.db.kysely
      .selectFrom('users')
      .select(['id'])
      .where('email', '=', data.email)
      .executeTakeFirst();
    let created = false;
    if (existing === undefined) {
      await this.opts.accounts.createUser({
        email: data.email,
        name: data.name ?? data.email.split('@')[0]!,
        role: data.role,
        projectId: ctx.projectId,
      });
      created = true;
    } else {
      await this.opts.accounts.setRole(ctx.projectId, existing.id, data.role);
    }
    const member = (await this.opts.accounts.listMembers(ctx.projectId)).find((m) => m.email === data.email);
    if (member === undefined)
      throw new PlatformError('conflict', `${data.email} is not a member after the change`);
    return { ...member, created };
  }

  /** The projects the caller belongs to, with their role and member count. */
  async projects(ctx: CallContext): Promise<ProjectSummary[]> {
    const rows = await this.opts.db.kysely
      .selectFrom('memberships as mine')
      .innerJoin('projects', 'projects.id', 'mine.project_id')
      .innerJoin('memberships as all', 'all.project_id', 'mine.project_id')
      .select((eb) => [
        'projects.id',
        'projects.name',
        'projects.created_at',
        'mine.role',
        eb.fn.count<number>('all.user_id').as('members'),
      ])
      .where('mine.user_id', '=', ctx.user.userId)
      .groupBy(['projects.id', 'projects.name', 'projects.created_at', 'mine.role'])
      .orderBy('projects.name')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      createdAt: Number(r.created_at),
      role: r.role,
      members: Number(r.members),
    }));
  }

  /** Creates a project with the caller as its first admin (an admin of the caller's project may). */
  async createProject(ctx: CallContext, input: { id: string; name: string }): Promise<ProjectSummary> {
    requireRole(ctx, 'admin', 'creating a project');
    if (ctx.user.kind !== 'user')
      throw new PlatformError('forbidden', 'a project is created by a person, who becomes its first admin');
    const data = parsed(projectInput, input, 'project');
    const taken = await this.opts.db.kysely
      .selectFrom('projects')
      .select('id')
      .where('id', '=', data.id)
      .executeTakeFirst();
    // a retried approved call finds its own project: the caller is already its admin
    if (taken !== undefined && (await this.opts.accounts.roleOf(data.id, ctx.user.userId)) !== 'admin')
      throw new PlatformError('conflict', `project "${data.id}" already exists; choose another id`);
    if (taken === undefined) {
      await this.opts.db.kysely
        .insertInto('projects')
        .values({ id: data.id, name: data.name, description: '', created_at: this.now() })
        .execute();
      await this.opts.accounts.setRole(data.id, ctx.user.userId, 'admin');
    }
    const project = (await this.projects(ctx)).find((p) => p.id === data.id);
    if (project === undefined) throw new PlatformError('conflict', `project "${data.id}" was not created`);
    return project;
  }
}
