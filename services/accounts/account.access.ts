import { createHash } from 'node:crypto';
import type { Role } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import type { AccountRepository } from './account.repository.js';
import type { Project, User } from './model.js';

/** The hex sha256 of a secret: what sessions, API tokens and link codes store instead of the secret. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A project, or `not_found` listing the known ones. */
export async function requireProject(repo: AccountRepository, id: string): Promise<Project> {
  const project = await repo.project(id);
  if (project) return project;
  const known = await repo.projectIds();
  throw new PlatformError(
    'not_found',
    `project "${id}" not found; known projects: ${known.join(', ') || '(none)'}`,
  );
}

/** A user, or `not_found`. */
export async function requireUser(repo: AccountRepository, id: string): Promise<User> {
  const user = await repo.user(id);
  if (!user) throw new PlatformError('not_found', `user "${id}" not found; list members with listMembers`);
  return user;
}

/**
 * The user's role in a project, or `forbidden`. An unknown project and one the user is not in get the same
 * answer, naming only the user's own projects, so a signed-in user can neither list the installation's
 * projects nor probe which ids exist.
 */
export async function requireMemberRole(
  repo: AccountRepository,
  projectId: string,
  user: User,
): Promise<Role> {
  const role = await repo.role(projectId, user.id);
  if (role) return role;
  throw new PlatformError(
    'forbidden',
    `${user.email} has no role in project "${projectId}"; your projects: ${(await repo.projectsOf(user.id)).join(', ') || '(none)'}. Ask an admin of the project to add you`,
  );
}
