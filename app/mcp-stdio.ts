import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { DEFAULT_PROJECT_ID, type AccountService } from '../services/accounts/index.js';
import type { Config } from './config.js';
import type { Principal } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import pino from 'pino';
import { createLogger, type Logger } from '../core/log.js';
import { createPlatform } from './platform.js';
import { mcpServicesOf } from './wiring.js';
import { MCP_SCOPES } from '../mcp-server/http.js';
import { createMcpServer } from '../mcp-server/server.js';

/** The platform logger on stderr: on stdio, stdout carries only JSON-RPC. */
export function stderrLogger(level: string): Logger {
  return createLogger(level, pino.destination({ fd: 2, sync: true }));
}

/** Who a stdio server acts as. */
export interface StdioIdentity {
  principal: Principal;
  projectId: string;
  /** How it was decided, for the stderr banner. */
  how: string;
}

/** The principal of the local admin an embedded stdio server acts as when no token is set. */
export function localAdminPrincipal(): Principal {
  return {
    userId: 'local-admin',
    email: 'local-admin@visioninapp.local',
    name: 'local admin (stdio, no token)',
    role: 'admin',
    kind: 'system',
  };
}

/**
 * Resolves who `visioninapp mcp` acts as: the owner of `token` (scope "mcp" or "*") when set;
 * otherwise, in the embedded default only (SQLite and local accounts on this machine), the local admin.
 */
export async function stdioIdentity(
  accounts: Pick<AccountService, 'authenticateToken'>,
  config: Config,
  token: string | undefined,
): Promise<StdioIdentity> {
  if (token !== undefined && token !== '') {
    const principal = await accounts.authenticateToken(token.trim());
    if (!principal.scopes.some((s) => (MCP_SCOPES as readonly string[]).includes(s))) {
      throw new PlatformError(
        'forbidden',
        `API token ${principal.tokenId} lacks the "mcp" scope; create a token with scope "mcp" (or "*")`,
      );
    }
    return {
      principal,
      projectId: principal.projectId,
      how: `as ${principal.email} (${principal.role}) with API token ${principal.tokenId}`,
    };
  }
  const embedded = config.DATABASE_URL === undefined && config.FIREBASE_PROJECT_ID === undefined;
  if (!embedded) {
    throw new PlatformError(
      'unauthenticated',
      'set VISIONINAPP_TOKEN to an API token with scope "mcp"; only the embedded default on this machine may run without one',
    );
  }
  return {
    principal: localAdminPrincipal(),
    projectId: DEFAULT_PROJECT_ID,
    how: 'as the LOCAL ADMIN (embedded default, no VISIONINAPP_TOKEN set): every tool call is audited as local-admin',
  };
}

/**
 * `visioninapp mcp`: an MCP server on stdin/stdout over the configured platform (migrated, no
 * background loops: the server process runs those). `log` must write to stderr: stdout carries
 * only JSON-RPC. Resolves when stdin closes.
 */
export async function runStdioServer(
  config: Config,
  log: Logger,
  token: string | undefined,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<void> {
  const platform = await createPlatform(config, log);
  try {
    await platform.prepare();
    const identity = await stdioIdentity(platform.accounts, config, token);
    // The embedded search index lives in memory; build it so search works in this process too.
    if (config.ELASTICSEARCH_URL === undefined) await platform.reindex();
    const session = createMcpServer({
      services: mcpServicesOf(platform),
      principal: identity.principal,
      projectId: identity.projectId,
    });
    const transport = new StdioServerTransport();
    const closed = new Promise<void>((resolve) => {
      transport.onclose = resolve;
      process.stdin.once('end', resolve);
      process.stdin.once('close', resolve);
    });
    await session.server.connect(transport);
    stderr.write(`visioninapp mcp: serving MCP on stdio ${identity.how}, project "${identity.projectId}"\n`);
    await closed;
    await session.close().catch(() => undefined);
  } finally {
    await platform.close();
  }
}
