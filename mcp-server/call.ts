import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { CallContext, Principal } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { ToolContext, ToolProgress } from '../tools/define.js';
import { toToolError, type ToolError, type ToolResult } from '../tools/run-tool.js';
import type { McpServices } from './services.js';

/** What the SDK hands every request handler. */
export type McpExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Who is connected: read at every call, so a front end can refresh it (role change, revoked token). */
export interface McpCaller {
  principal: Principal;
  projectId: string;
  /** Name of the MCP client (from `initialize`), for audit reasons. */
  clientName?: string;
}

/** A call context for one MCP request: the caller, a request id, the request's AbortSignal. */
export function callContextOf(services: McpServices, caller: McpCaller, extra: McpExtra): CallContext {
  const requestId = newId('mcp');
  return {
    user: caller.principal,
    projectId: caller.projectId,
    requestId,
    signal: extra.signal,
    log: services.log.child({ requestId, mcpSession: extra.sessionId }),
  };
}

/** A tool context whose progress goes out as `notifications/progress` when the client sent a progress token. */
export function toolContextOf(services: McpServices, ctx: CallContext, extra: McpExtra): ToolContext {
  const progress = progressReporter(extra);
  return {
    ...ctx,
    services: services.toolServices,
    registry: services.registry,
    ...(progress ? { onProgress: progress } : {}),
  };
}

/** Sends progress for the request when its `_meta.progressToken` is set; undefined otherwise. Values only ever increase. */
export function progressReporter(extra: McpExtra): ((p: ToolProgress) => void) | undefined {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  let last = 0;
  return (p) => {
    if (extra.signal.aborted) return;
    const wanted = p.fraction === undefined ? last : Math.min(100, p.fraction * 100);
    last = wanted > last ? wanted : last + 0.001;
    const params = {
      progressToken: token,
      progress: Number(last.toFixed(3)),
      message: p.message,
      ...(p.fraction === undefined ? {} : { total: 100 }),
    };
    extra.sendNotification({ method: 'notifications/progress', params }).catch(() => undefined);
  };
}

/** A tool error as an MCP result: `isError` with a message a model or a person can act on. */
export function errorResult(error: ToolError, meta?: Record<string, unknown>): CallToolResult {
  const details =
    error.details && Object.keys(error.details).length > 0
      ? `\n${JSON.stringify(error.details, null, 2)}`
      : '';
  return {
    content: [{ type: 'text', text: `${error.code}: ${error.message}${details}` }],
    isError: true,
    _meta: { 'visioninapp/error': error, ...meta },
  };
}

/** A successful tool result with its structured output and the same JSON as text for clients that read only text. */
export function okResult(output: unknown, meta?: Record<string, unknown>): CallToolResult {
  const structured = (
    typeof output === 'object' && output !== null && !Array.isArray(output) ? output : { value: output }
  ) as Record<string, unknown>;
  return {
    content: [{ type: 'text', text: JSON.stringify(output, null, 2) }],
    structuredContent: structured,
    ...(meta ? { _meta: meta } : {}),
  };
}

/** The MCP result of a registry tool's result. */
export function resultOf(result: ToolResult, meta?: Record<string, unknown>): CallToolResult {
  return result.ok
    ? okResult(result.output, { ...(result.replayed ? { 'visioninapp/replayed': true } : {}), ...meta })
    : errorResult(result.error, meta);
}

/** Runs `fn`, turning a thrown PlatformError (or anything else) into an `isError` result. */
export async function guarded(fn: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await fn();
  } catch (err) {
    return errorResult(toToolError(err));
  }
}

/** Throws `unavailable` when the request was cancelled. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted)
    throw new PlatformError('unavailable', 'the request was cancelled by the client; nothing more was done');
}
