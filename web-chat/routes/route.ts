import type { Request, Response } from 'express';
import { z } from 'zod';
import { ROLES, type CallContext, type Role } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import type { PlatformMetrics } from '../../core/metrics.js';
import { runTool } from '../../tools/run-tool.js';
import { type RequestAuth } from '../auth.js';
import { toolContext, type WebServices } from '../web-services.js';

/** Who may call a route: anyone (`public`) or an authenticated principal with at least this role. */
export type RouteAccess = 'public' | Role;

/** What a route handler receives: validated input, the caller and the services. */
export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** Present on every non-public route. */
  ctx: CallContext;
  auth: RequestAuth | undefined;
  req: Request;
  res: Response;
  s: WebServices;
  metrics: PlatformMetrics;
  /** How people sign in on this server. */
  authMode: 'local' | 'firebase';
  /** What the sign-in page needs (GET /api/auth/config). */
  signIn: SignInConfig;
  /** Presigns a storage key for the browser. */
  presign(key: string): Promise<string>;
  /** The whole route table (the OpenAPI document is generated from it). */
  routes: readonly RouteDef[];
}

/** What the sign-in page is told: the mode, and in Firebase mode the (public) Web SDK configuration. */
export const signInConfigSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('local') }),
  z.object({
    mode: z.literal('firebase'),
    firebase: z.object({
      apiKey: z.string().nullable().describe('Web API key (FIREBASE_API_KEY); null when not configured'),
      authDomain: z.string().describe('authDomain of the Web SDK'),
      projectId: z.string().describe('the Firebase project'),
      emulatorUrl: z
        .string()
        .nullable()
        .describe('Auth emulator URL the page connects to (development), or null'),
    }),
  }),
]);
/** What the sign-in page is told. */
export type SignInConfig = z.infer<typeof signInConfigSchema>;

/** Why a state-changing route does not run a tool: the only kinds of exemption the mutation matrix accepts. */
export const MUTATION_EXEMPTIONS = [
  'sign-in',
  'own-credential',
  'approval-request',
  'device-upload-url',
  'upload-staging',
  'read-only',
] as const;

/**
 * How a state-changing route (any method but GET) changes state; every one declares it, and
 * test/security/mutation-matrix.test.ts holds each to it:
 * - `tool`: runs this registry tool through runTool (`:name` = the tool named in the path), so a
 *   write or critical tool runs only with an approval bound to its exact arguments, and is audited;
 * - `agent`: hands the request to the agent, whose every changing step waits for an approval and
 *   then runs through runTool;
 * - `exempt`: not a project change made by a tool, with its kind and why (signing in or out, the
 *   caller's own credentials, asking for an approval, presigning a device's upload URLs, staging
 *   the bytes of a dataset upload that only an approved import_dataset reads, a read that needs a
 *   request body, such as running a model on an uploaded image that is never stored).
 */
export type RouteMutation =
  { tool: string } | { agent: true } | { exempt: (typeof MUTATION_EXEMPTIONS)[number]; why: string };

/** One route of the single declarative route table: method, path, access, zod schemas and a thin handler. */
export interface RouteDef<P = any, Q = any, B = any> {
  method: 'get' | 'post' | 'delete';
  /** Express path, e.g. `/api/datasets/:ref`. */
  path: string;
  access: RouteAccess;
  tag: string;
  summary: string;
  /** Required on every route but GET: how it changes state (see RouteMutation). */
  mutation?: RouteMutation;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  response?: z.ZodType;
  /** Status on success (200 by default). */
  status?: number;
  /** When true the handler writes the response itself (non-JSON). */
  raw?: boolean;
  handler(input: RouteInput<P, Q, B>): Promise<unknown>;
}

/** Declares a route with typed input. */
export function route<P = Record<string, never>, Q = Record<string, never>, B = undefined>(
  def: RouteDef<P, Q, B>,
): RouteDef<P, Q, B> {
  return def;
}

export async function tool(
  i: RouteInput<unknown, unknown, unknown>,
  name: string,
  args: unknown,
  approvalId?: string,
): Promise<unknown> {
  const result = await runTool(
    toolContext(i.s.tools, i.ctx),
    name,
    args,
    approvalId === undefined ? {} : { approvalId },
  );
  if (!result.ok) throw new PlatformError(result.error.code, result.error.message, result.error.details);
  return result.output;
}

export const id = z.string().min(1).max(191).describe('identifier');
// Optional in the schema so that a call without one reaches runTool, which answers approval_required with what to do.
export const approvalIdField = (toolName: string) =>
  z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe(`approved request for ${toolName} with these exact arguments`);
export const idParams = z.object({ id });
export const refParams = z.object({ ref: z.string().min(1).max(300).describe('name, name@version or id') });
export const page = {
  offset: z.coerce.number().int().min(0).max(1_000_000).optional().describe('items to skip'),
  limit: z.coerce.number().int().min(1).max(500).optional().describe('items to return'),
};
export const errorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export const okSchema = z.object({ ok: z.literal(true) });
export const anyObject = z.record(z.string(), z.unknown());
export const userView = z.object({
  userId: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  kind: z.enum(['user', 'token', 'system']),
});
export const meSchema = z.object({
  user: userView,
  projectId: z.string(),
  via: z.enum(['cookie', 'token', 'firebase']),
  authMode: z.enum(['local', 'firebase']),
  features: z.record(z.string(), z.boolean()),
});
export const decisionBody = z.object({
  decision: z
    .enum(['approve', 'reject', 'edit'])
    .describe('approve, reject, or edit (approve changed arguments)'),
  args: z.record(z.string(), z.unknown()).optional().describe('the changed arguments (edit only)'),
  reason: z.string().trim().max(500).optional().describe('why; expected when rejecting'),
});
export const chatLinkCode = z
  .string()
  .regex(/^[A-Za-z0-9_-]{16,100}$/, 'the code from "/vision link"')
  .describe('code from "/vision link"');
export const chatLinkView = z.object({
  id: z.string(),
  platform: z.string(),
  teamId: z.string(),
  teamName: z.string(),
  chatUserId: z.string(),
  chatUserName: z.string(),
  userId: z.string(),
  createdAt: z.number(),
});
export const pendingChatLinkView = chatLinkView
  .omit({ id: true, userId: true, createdAt: true })
  .extend({ expiresAt: z.number() });
export const messageBody = z.object({
  message: z
    .string()
    .trim()
    .min(1, 'say what you want done')
    .max(4000, 'keep it under 4000 characters')
    .describe('what you want done, in English or Korean'),
});

/** name@N of each model version id, for showing names where devices store ids (an unknown id stays as it is). */
export async function modelRefsOf(
  ctx: CallContext,
  s: WebServices,
  ids: Array<string | null>,
): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  for (const mv of new Set(ids.filter((x): x is string => x !== null))) {
    refs.set(
      mv,
      await s.models.get(ctx, mv).then(
        (v) => v.ref,
        () => mv,
      ),
    );
  }
  return refs;
}

/** Features the UI shows or hides. */
export function featuresOf(s: WebServices): Record<string, boolean> {
  return {
    chat: s.agent !== undefined,
    datasets: s.datasets !== undefined,
    training: s.training !== undefined,
    models: s.models !== undefined,
    fleet: s.fleet !== undefined,
    rollouts: s.rollouts !== undefined,
    feedback: s.feedback !== undefined,
  };
}

/** Routes served outside the table without a principal (health, the sign-in page, static assets). */
export const PUBLIC_PATHS = ['/healthz', '/readyz', '/login.html', '/assets/*', '/vendor/*'] as const;

/** The error body every route answers with on failure. */
export const ERROR_SCHEMA = errorSchema;
