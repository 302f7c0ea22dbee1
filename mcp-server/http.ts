import { randomUUID } from 'node:crypto';
import { hostHeaderValidation } from '@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { TokenPrincipal } from '../services/accounts/index.js';
import { isPlatformError, PlatformError } from '../core/errors.js';
import { createMcpServer, type McpSession } from './server.js';
import type { McpServices } from './services.js';

/** Token scopes that open the MCP endpoint. */
export const MCP_SCOPES = ['*', 'mcp'] as const;
/** Header a client may send to name its project (the token's project otherwise). */
export const MCP_PROJECT_HEADER = 'x-project-id';

/** Options of the Streamable HTTP endpoint. */
export interface McpHttpOptions {
  services: McpServices;
  /** Host names (no port) accepted in the Host header, against DNS rebinding. Default: localhost names plus PUBLIC_URL's host. */
  allowedHosts?: string[];
  /** Origins accepted when a browser sends an Origin header. Default: http(s) origins of the allowed hosts. */
  allowedOrigins?: string[];
  /** A session unused this long is closed. Default 30 minutes. */
  idleTimeoutMs?: number;
  /** Most sessions open at once. Default 1000. */
  maxSessions?: number;
}

/** The `/mcp` endpoint: an express router plus what a server needs at shutdown. */
export interface McpHttpEndpoint {
  router: Router;
  /** Number of open sessions. */
  sessionCount(): number;
  /** Closes every session. */
  close(): Promise<void>;
}

interface HttpSession {
  transport: StreamableHTTPServerTransport;
  mcp: McpSession;
  tokenId: string;
  lastSeen: number;
}

const LOCAL_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

function rpcError(res: Response, status: number, message: string, extra: Record<string, unknown> = {}): void {
  if (res.headersSent) return;
  res.status(status).json({
    jsonrpc: '2.0',
    error: { code: status === 404 ? -32001 : -32000, message, data: extra },
    id: null,
  });
}

function statusOf(err: unknown): number {
  if (!isPlatformError(err)) return 500;
  switch (err.code) {
    case 'unauthenticated':
      return 401;
    case 'forbidden':
      return 403;
    case 'invalid_input':
      return 400;
    case 'not_found':
      return 404;
    default:
      return 500;
  }
}

/** Builds the Streamable HTTP endpoint: bearer API tokens (scope "mcp" or "*", expiry checked on every request), sessions, Host/Origin checks. */
export function mcpHttpEndpoint(opts: McpHttpOptions): McpHttpEndpoint {
  const { services } = opts;
  const log = services.log;
  const publicHost = (() => {
    try {
      return new URL(services.publicUrl).hostname;
    } catch {
      return undefined;
    }
  })();
  const allowedHosts = opts.allowedHosts ?? [
    ...new Set([...LOCAL_HOSTS, ...(publicHost ? [publicHost] : [])]),
  ];
  const allowedOrigins = opts.allowedOrigins;
  const idleMs = opts.idleTimeoutMs ?? 30 * 60_000;
  const maxSessions = opts.maxSessions ?? 1000;
  const sessions = new Map<string, HttpSession>();

  const sweeper = setInterval(
    () => {
      const now = Date.now();
      for (const [id, s] of sessions) {
        if (now - s.lastSeen > idleMs) {
          log.info({ mcpSession: id }, 'closing an idle MCP session');
          void s.transport.close();
        }
      }
    },
    Math.min(idleMs, 60_000),
  );
  sweeper.unref();

  function originAllowed(origin: string): boolean {
    if (allowedOrigins !== undefined) return allowedOrigins.includes(origin);
    try {
      const url = new URL(origin);
      return (url.protocol === 'http:' || url.protocol === 'https:') && allowedHosts.includes(url.hostname);
    } catch {
      return false;
    }
  }

  async function authenticate(req: Request): Promise<TokenPrincipal> {
    const authz = req.headers.authorization;
    if (authz === undefined)
      throw new PlatformError(
        'unauthenticated',
        'send an API token as "Authorization: Bearer via_…" (create one with scope "mcp" under Settings → API tokens)',
      );
    const m = /^Bearer\s+(\S+)$/i.exec(authz);
    if (!m)
      throw new PlatformError('unauthenticated', 'the Authorization header must be "Bearer <API token>"');
    const project = req.headers[MCP_PROJECT_HEADER];
    const principal = await services.accounts.authenticateToken(
      m[1]!,
      typeof project === 'string' && project !== '' ? project : undefined,
    );
    if (!principal.scopes.some((s) => (MCP_SCOPES as readonly string[]).includes(s))) {
      throw new PlatformError(
        'forbidden',
        `API token ${principal.tokenId} lacks the "mcp" scope; create a token with scope "mcp" (or "*") for MCP clients`,
      );
    }
    return principal;
  }

  const router = express.Router();
  router.use(hostHeaderValidation(allowedHosts));
  router.use((req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin)) {
      rpcError(res, 403, `origin ${origin} may not call this MCP endpoint`);
      return;
    }
    next();
  });
  router.use(express.json({ limit: '4mb' }));

  router.all('/', async (req: Request, res: Response) => {
    let principal: TokenPrincipal;
    try {
      principal = await authenticate(req);
    } catch (err) {
      const status = statusOf(err);
      if (status === 401)
        res.setHeader('WWW-Authenticate', 'Bearer realm="visioninapp", error="invalid_token"');
      rpcError(res, status === 500 ? 401 : status, (err as Error).message);
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    try {
      if (typeof sessionId === 'string') {
        const session = sessions.get(sessionId);
        if (session === undefined) {
          rpcError(
            res,
            404,
            `MCP session ${sessionId} not found (it expired or the server restarted); initialize a new session`,
          );
          return;
        }
        if (session.tokenId !== principal.tokenId) {
          rpcError(res, 403, 'this MCP session belongs to another API token');
          return;
        }
        session.mcp.caller.principal = principal;
        session.lastSeen = Date.now();
        await session.transport.handleRequest(req, res, req.body);
        return;
      }
      if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
        rpcError(res, 400, 'no mcp-session-id header: start with an initialize request');
        return;
      }
      if (sessions.size >= maxSessions) {
        rpcError(res, 503, `too many open MCP sessions (${maxSessions}); try again later`);
        return;
      }
      const mcp = createMcpServer({ services, principal, projectId: principal.projectId });
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, mcp, tokenId: principal.tokenId, lastSeen: Date.now() });
          log.info(
            { mcpSession: id, userId: principal.userId, tokenId: principal.tokenId, role: principal.role },
            'MCP session opened',
          );
        },
      });
      transport.onclose = () => {
        const id = transport.sessionId;
        if (id !== undefined && sessions.delete(id)) log.info({ mcpSession: id }, 'MCP session closed');
        void mcp.close();
      };
      await mcp.server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (err) {
      log.error({ err }, 'MCP request failed');
      rpcError(res, 500, 'internal error while handling the MCP request');
    }
  });

  return {
    router,
    sessionCount: () => sessions.size,
    async close() {
      clearInterval(sweeper);
      await Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => undefined)));
      sessions.clear();
    },
  };
}

/** The `/mcp` router of the platform server (mounted by app/http.ts). */
export function mcpRouter(services: McpServices, opts: Partial<McpHttpOptions> = {}): Router {
  return mcpHttpEndpoint({ services, ...opts }).router;
}
