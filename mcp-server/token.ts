import type { AccountService } from '../services/accounts/index.js';
import type { Role } from '../core/context.js';
import { PlatformError } from '../core/errors.js';

/** What `visioninapp mcp-token` asks for. */
export interface McpTokenInput {
  email: string;
  projectId: string;
  role: Role;
  /** Lifetime in days; the token stops working after it. */
  days: number;
}

/** Creates an API token with scope "mcp" for an existing member (role no higher than theirs); the secret is returned only here. */
export async function createMcpToken(
  accounts: Pick<AccountService, 'listMembers' | 'createApiToken'>,
  input: McpTokenInput,
): Promise<{ id: string; token: string; expiresAt: number | null; email: string; role: Role }> {
  const email = input.email.trim().toLowerCase();
  const members = await accounts.listMembers(input.projectId);
  const member = members.find((m) => m.email === email);
  if (member === undefined) {
    throw new PlatformError(
      'not_found',
      `${email} is not a member of project "${input.projectId}"; members: ${
        members
          .map((m) => m.email)
          .slice(0, 20)
          .join(', ') || '(none)'
      }`,
    );
  }
  const created = await accounts.createApiToken({
    userId: member.userId,
    projectId: input.projectId,
    name: `MCP client (${new Date().toISOString().slice(0, 10)})`,
    role: input.role,
    scopes: ['mcp'],
    expiresInDays: input.days,
  });
  return { ...created, email, role: input.role };
}
