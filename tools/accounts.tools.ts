import { z } from 'zod';
import { ROLES } from '../core/context.js';
import { defineTool } from './define.js';

const memberView = z.object({
  name: z.string().describe("the person's name"),
  email: z.string().describe('their sign-in email'),
  role: z.enum(ROLES).describe('their role in this project'),
  since: z.string().describe('member since (ISO time)'),
});

const projectView = z.object({
  id: z.string().describe('project id (used in URLs and the X-Project header)'),
  name: z.string().describe('project name'),
  role: z.enum(ROLES).describe("the caller's role in it"),
  members: z.number().describe('how many people belong to it'),
});

const member = (m: { name: string; email: string; role: (typeof ROLES)[number]; since: number }) => ({
  name: m.name,
  email: m.email,
  role: m.role,
  since: new Date(m.since).toISOString(),
});

/** The people of the project and their roles. */
export const listMembersTool = defineTool({
  name: 'list_members',
  title: 'List project members',
  description: 'List the people of this project with their role (viewer, operator, approver or admin).',
  input: z.object({}),
  output: z.object({ members: z.array(memberView).describe('members, by email') }),
  risk: 'read',
  idempotent: true,
  async run(ctx) {
    return { members: (await ctx.services.members.members(ctx)).map(member) };
  },
});

/** Adds a person to the project with a role, or changes their role (admins only). */
export const setMemberRoleTool = defineTool({
  name: 'set_member_role',
  title: 'Give a person a role in this project',
  description:
    'Give a person a role in this project: adds them (creating their account when the email is new; they sign in with Firebase or once a password is set) or changes their role. Only an admin of the project may; the last admin cannot be demoted.',
  input: z.object({
    email: z.string().email().max(320).describe("the person's sign-in email"),
    name: z.string().min(1).max(200).optional().describe('their name, for a new account'),
    role: z.enum(ROLES).describe('the role to give: viewer, operator, approver or admin'),
  }),
  output: memberView.extend({ created: z.boolean().describe('whether a new account was created') }),
  risk: 'critical',
  idempotent: true,
  checkAfterInterruption: 'list the members (list_members): the person shows the new role or the old one',
  async run(ctx, input) {
    const m = await ctx.services.members.setMemberRole(ctx, input);
    return { ...member(m), created: m.created };
  },
});

/** The caller's projects. */
export const listProjectsTool = defineTool({
  name: 'list_projects',
  title: 'List my projects',
  description: 'List the projects you belong to, with your role in each and how many people are in it.',
  input: z.object({}),
  output: z.object({ projects: z.array(projectView).describe('projects, by name') }),
  risk: 'read',
  idempotent: true,
  async run(ctx) {
    const projects = await ctx.services.members.projects(ctx);
    return { projects: projects.map(({ id, name, role, members }) => ({ id, name, role, members })) };
  },
});

/** Creates a project with the caller as its first admin (admins only). */
export const createProjectTool = defineTool({
  name: 'create_project',
  title: 'Create a project',
  description:
    'Create a project (its own datasets, models, devices and people) with you as its first admin. Only an admin of the current project may.',
  input: z.object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{1,62}$/)
      .describe('project id: lowercase letters, digits and dashes, e.g. plant-2'),
    name: z.string().min(1).max(200).describe('project name people read'),
  }),
  output: projectView,
  risk: 'critical',
  idempotent: true,
  checkAfterInterruption: 'list your projects (list_projects): the project is there or not',
  async run(ctx, input) {
    const { id, name, role, members } = await ctx.services.members.createProject(ctx, input);
    return { id, name, role, members };
  },
});

/** The tools of people and projects. */
export const accountTools = [listMembersTool, setMemberRoleTool, listProjectsTool, createProjectTool];
