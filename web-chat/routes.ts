import type { Request, Response } from 'express';
import { z } from 'zod';
import { ROLES, type CallContext, type Role } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import type { PlatformMetrics } from '../core/metrics.js';
import { reviewFeedbackTool } from '../tools/feedback.tools.js';
import { runTool } from '../tools/run-tool.js';
import { clearSessionCookies, cookiesOf, csrfTokenOf, SESSION_COOKIE, setSessionCookies, type RequestAuth } from './auth.js';
import { toolContext, type WebServices } from './web-services.js';

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
      emulatorUrl: z.string().nullable().describe('Auth emulator URL the page connects to (development), or null'),
    }),
  }),
]);
/** What the sign-in page is told. */
export type SignInConfig = z.infer<typeof signInConfigSchema>;

/** Why a state-changing route does not run a tool: the only kinds of exemption the mutation matrix accepts. */
export const MUTATION_EXEMPTIONS = ['sign-in', 'own-credential', 'approval-request', 'device-upload-url'] as const;

/**
 * How a state-changing route (any method but GET) changes state; every one declares it, and
 * test/security/mutation-matrix.test.ts holds each to it:
 * - `tool`: runs this registry tool through runTool (`:name` = the tool named in the path), so a
 *   write or critical tool runs only with an approval bound to its exact arguments, and is audited;
 * - `agent`: hands the request to the agent, whose every changing step waits for an approval and
 *   then runs through runTool;
 * - `exempt`: not a project change made by a tool, with its kind and why (signing in or out, the
 *   caller's own credentials, asking for an approval, presigning a device's upload URLs).
 */
export type RouteMutation = { tool: string } | { agent: true } | { exempt: (typeof MUTATION_EXEMPTIONS)[number]; why: string };

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
export function route<P = Record<string, never>, Q = Record<string, never>, B = undefined>(def: RouteDef<P, Q, B>): RouteDef<P, Q, B> {
  return def;
}

function need<T>(service: T | undefined, what: string): T {
  if (service === undefined) throw new PlatformError('unavailable', `${what} is not enabled on this server yet; ask an admin to enable it`);
  return service;
}

async function tool(i: RouteInput<unknown, unknown, unknown>, name: string, args: unknown, approvalId?: string): Promise<unknown> {
  const result = await runTool(toolContext(i.s.tools, i.ctx), name, args, approvalId === undefined ? {} : { approvalId });
  if (!result.ok) throw new PlatformError(result.error.code, result.error.message, result.error.details);
  return result.output;
}

const id = z.string().min(1).max(191).describe('identifier');
// Optional in the schema so that a call without one reaches runTool, which answers approval_required with what to do.
const approvalIdField = (toolName: string) => z.string().min(1).max(64).optional().describe(`approved request for ${toolName} with these exact arguments`);
const idParams = z.object({ id });
const refParams = z.object({ ref: z.string().min(1).max(300).describe('name, name@version or id') });
const page = {
  offset: z.coerce.number().int().min(0).max(1_000_000).optional().describe('items to skip'),
  limit: z.coerce.number().int().min(1).max(500).optional().describe('items to return'),
};
const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) });
const okSchema = z.object({ ok: z.literal(true) });
const anyObject = z.record(z.string(), z.unknown());
const userView = z.object({
  userId: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  kind: z.enum(['user', 'token', 'system']),
});
const meSchema = z.object({
  user: userView,
  projectId: z.string(),
  via: z.enum(['cookie', 'token', 'firebase']),
  authMode: z.enum(['local', 'firebase']),
  features: z.record(z.string(), z.boolean()),
});
const decisionBody = z.object({
  decision: z.enum(['approve', 'reject', 'edit']).describe('approve, reject, or edit (approve changed arguments)'),
  args: z.record(z.string(), z.unknown()).optional().describe('the changed arguments (edit only)'),
  reason: z.string().trim().max(500).optional().describe('why; expected when rejecting'),
});
const chatLinkCode = z.string().regex(/^[A-Za-z0-9_-]{16,100}$/, 'the code from "/vision link"').describe('code from "/vision link"');
const chatLinkView = z.object({
  id: z.string(),
  platform: z.string(),
  teamId: z.string(),
  teamName: z.string(),
  chatUserId: z.string(),
  chatUserName: z.string(),
  userId: z.string(),
  createdAt: z.number(),
});
const pendingChatLinkView = chatLinkView.omit({ id: true, userId: true, createdAt: true }).extend({ expiresAt: z.number() });
const messageBody = z.object({ message: z.string().trim().min(1, 'say what you want done').max(4000, 'keep it under 4000 characters').describe('what you want done, in English or Korean') });

/** name@N of each model version id, for showing names where devices store ids (an unknown id stays as it is). */
async function modelRefsOf(ctx: CallContext, s: WebServices, ids: Array<string | null>): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  for (const mv of new Set(ids.filter((x): x is string => x !== null))) {
    refs.set(mv, s.models === undefined ? mv : await s.models.get(ctx, mv).then((v) => v.ref, () => mv));
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

/** The single route table of the REST API: every route with its access role (the security matrix test is generated from it). */
export const ROUTES: RouteDef[] = [
  route({
    method: 'post',
    path: '/api/auth/login',
    access: 'public',
    tag: 'auth',
    mutation: { exempt: 'sign-in', why: 'no principal exists yet; the account service checks the password, locks an account after repeated failures and opens the session' },
    summary: 'Sign in with email and password; sets the HttpOnly session cookie and the CSRF cookie',
    body: z.object({ email: z.string().trim().min(3).max(320).describe('account email'), password: z.string().min(1).max(1024).describe('account password') }),
    response: z.object({ user: anyObject, csrfToken: z.string() }),
    async handler({ body, s, req, res }) {
      const login = await s.accounts.login(body.email, body.password);
      const csrfToken = setSessionCookies(req, res, login);
      return { user: login.user, csrfToken };
    },
  }),
  route({
    method: 'get',
    path: '/api/auth/config',
    access: 'public',
    tag: 'auth',
    summary: 'How to sign in: local accounts, or Firebase with the Web SDK configuration (public values only)',
    response: signInConfigSchema,
    async handler({ signIn }) {
      return signIn;
    },
  }),
  route({
    method: 'post',
    path: '/api/auth/firebase',
    access: 'public',
    tag: 'auth',
    mutation: { exempt: 'sign-in', why: 'no principal exists yet; the account service verifies the Firebase ID token and opens the session' },
    summary: 'Sign in with a Firebase ID token (Firebase mode); sets the session cookie',
    body: z.object({ idToken: z.string().min(20).max(8192).describe('Firebase ID token from the Web SDK') }),
    response: z.object({ user: anyObject, csrfToken: z.string() }),
    async handler({ body, s, req, res }) {
      const login = await s.accounts.loginWithIdToken(body.idToken);
      return { user: login.user, csrfToken: setSessionCookies(req, res, login) };
    },
  }),
  route({
    method: 'post',
    path: '/api/auth/logout',
    access: 'viewer',
    tag: 'auth',
    mutation: { exempt: 'sign-in', why: "ends the caller's own session; changes nothing in the project" },
    summary: 'Sign out: ends the session and clears the cookies',
    response: okSchema,
    async handler({ s, req, res }) {
      const token = cookiesOf(req.headers)[SESSION_COOKIE];
      if (token) await s.accounts.logout(token);
      clearSessionCookies(req, res);
      return { ok: true };
    },
  }),
  route({
    method: 'get',
    path: '/api/me',
    access: 'viewer',
    tag: 'auth',
    summary: 'The signed-in principal, its role in the project and the enabled features',
    response: meSchema,
    async handler({ auth, s, req, authMode }) {
      const a = auth!;
      const { userId, email, name, role, kind } = a.principal;
      return {
        user: { userId, email, name, role, kind },
        projectId: a.projectId,
        via: a.via,
        authMode,
        features: featuresOf(s),
        ...(a.via === 'cookie' ? { csrfToken: csrfTokenOf(cookiesOf(req.headers)[SESSION_COOKIE] ?? '') } : {}),
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/tokens',
    access: 'viewer',
    tag: 'auth',
    summary: "The caller's API tokens (never their secrets)",
    async handler({ ctx, s }) {
      return { tokens: await s.accounts.listApiTokens(ctx.user.userId) };
    },
  }),
  route({
    method: 'post',
    path: '/api/tokens',
    access: 'viewer',
    tag: 'auth',
    mutation: { exempt: 'own-credential', why: "creates the caller's own API token with a role no higher than theirs (checked in the account service)" },
    summary: 'Creates an API token with a role no higher than yours; the token is shown only in this response',
    status: 201,
    body: z.object({
      name: z.string().trim().min(1).max(200).describe('what the token is for'),
      role: z.enum(ROLES).describe('role of the token, at most yours'),
      scopes: z.array(z.string().max(64)).min(1).max(20).default(['api']).describe('"api" for REST and sockets, "mcp" for MCP, "*" for all'),
      expiresInDays: z.number().positive().max(3650).optional().describe('lifetime in days; none when omitted'),
    }),
    async handler({ ctx, s, body }) {
      if (ctx.user.kind === 'token') throw new PlatformError('forbidden', 'API tokens cannot create API tokens; sign in as a person');
      return s.accounts.createApiToken({ userId: ctx.user.userId, projectId: ctx.projectId, ...body });
    },
  }),
  route({
    method: 'delete',
    path: '/api/tokens/:id',
    access: 'viewer',
    tag: 'auth',
    mutation: { exempt: 'own-credential', why: 'only takes access away: your token, or as an admin any token of this project (checked in the account service)' },
    summary: 'Revokes one of your API tokens (admins: any token of this project)',
    params: idParams,
    response: okSchema,
    async handler({ ctx, s, params }) {
      await s.accounts.revokeApiToken(params.id, { userId: ctx.user.userId, projectId: ctx.projectId, role: ctx.user.role });
      return { ok: true };
    },
  }),

  route({
    method: 'get',
    path: '/api/datasets',
    access: 'viewer',
    tag: 'datasets',
    summary: 'Datasets of the project with class counts; `q` filters by name, description, tag or class',
    query: z.object({ q: z.string().trim().max(200).optional().describe('search text') }),
    async handler({ ctx, s, query }) {
      const all = await need(s.datasets, 'datasets').list(ctx);
      const q = query.q?.toLowerCase();
      const items = q ? all.filter((d) => [d.name, d.description, ...d.tags, ...d.classNames].some((t) => t.toLowerCase().includes(q))) : all;
      return { datasets: items };
    },
  }),
  route({
    method: 'get',
    path: '/api/datasets/:ref',
    access: 'viewer',
    tag: 'datasets',
    summary: 'One dataset version with its statistics (class counts, splits)',
    params: refParams,
    async handler({ ctx, s, params }) {
      return need(s.datasets, 'datasets').get(ctx, params.ref);
    },
  }),
  route({
    method: 'get',
    path: '/api/datasets/:ref/images',
    access: 'viewer',
    tag: 'datasets',
    summary: 'Sample images of a dataset version with their boxes and short-lived image URLs',
    params: refParams,
    query: z.object({ split: z.enum(['train', 'val', 'test']).optional().describe('only this split'), ...page }),
    async handler({ ctx, s, params, query, presign }) {
      const { total, items } = await need(s.datasets, 'datasets').listImages(ctx, params.ref, { split: query.split, offset: query.offset ?? 0, limit: Math.min(query.limit ?? 24, 200) });
      return { total, items: await Promise.all(items.map(async (i) => ({ ...i, url: await presign(i.thumbnailKey ?? i.imageKey), fullUrl: await presign(i.imageKey) }))) };
    },
  }),

  route({
    method: 'get',
    path: '/api/models',
    access: 'viewer',
    tag: 'models',
    summary: 'Model versions, newest first, with metrics and stages',
    query: z.object({ name: z.string().max(200).optional().describe('only versions of this model name'), stage: z.enum(['candidate', 'staging', 'production']).optional(), ...page }),
    async handler({ ctx, s, query }) {
      return { versions: await need(s.models, 'the model registry').list(ctx, query) };
    },
  }),
  route({
    method: 'get',
    path: '/api/models/compare',
    access: 'viewer',
    tag: 'models',
    summary: 'Compares two model versions metric by metric',
    query: z.object({ a: z.string().min(1).max(300).describe('first version ref'), b: z.string().min(1).max(300).describe('second version ref') }),
    async handler({ ctx, s, query }) {
      return need(s.models, 'the model registry').compare(ctx, query.a, query.b);
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref',
    access: 'viewer',
    tag: 'models',
    summary: 'One model version',
    params: refParams,
    async handler({ ctx, s, params }) {
      return need(s.models, 'the model registry').get(ctx, params.ref);
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref/download',
    access: 'viewer',
    tag: 'models',
    summary: "A short-lived download link for one of a version's stored files (model.onnx by default)",
    params: refParams,
    query: z.object({ file: z.string().min(1).max(200).optional().describe('artifact name, e.g. model.onnx') }),
    response: z.object({ name: z.string(), url: z.string(), sha256: z.string(), size: z.number() }),
    async handler({ ctx, s, params, query, presign }) {
      const v = await need(s.models, 'the model registry').get(ctx, params.ref);
      const file = query.file ?? 'model.onnx';
      const artifact = v.artifacts.find((a) => a.name === file);
      if (artifact === undefined) throw new PlatformError('not_found', `${v.ref} has no file "${file}"; its files: ${v.artifacts.map((a) => a.name).join(', ') || 'none'}`);
      return { name: artifact.name, url: await presign(artifact.key), sha256: artifact.sha256, size: artifact.size };
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref/stages',
    access: 'viewer',
    tag: 'models',
    summary: 'Stage history of a model name',
    params: refParams,
    async handler({ ctx, s, params }) {
      return { history: await need(s.models, 'the model registry').stageHistory(ctx, params.ref.split('@')[0]!) };
    },
  }),
  route({
    method: 'get',
    path: '/api/models/:ref/evaluations',
    access: 'viewer',
    tag: 'models',
    summary: 'Evaluations recorded for a model version (mAP50, mAP50-95, precision, recall, per class), newest first',
    params: refParams,
    query: z.object({ limit: z.coerce.number().int().min(1).max(200).optional().describe('evaluations to return (20 by default)') }),
    async handler({ ctx, s, params, query }) {
      return { evaluations: await need(s.evaluations, 'model evaluation').list(ctx, params.ref, query.limit === undefined ? {} : { limit: query.limit }) };
    },
  }),
  route({
    method: 'post',
    path: '/api/models/:ref/evaluate',
    access: 'operator',
    tag: 'models',
    mutation: { tool: 'evaluate_model' },
    summary: 'Evaluates a version on a dataset split through the evaluate_model tool; needs an approved approval for these exact arguments',
    params: refParams,
    body: z.object({
      split: z.enum(['train', 'val', 'test']).optional().describe('split to evaluate on (test by default)'),
      dataset: z.string().min(1).max(200).optional().describe('dataset name or name@N; the training dataset version by default'),
      maxImages: z.number().int().min(1).max(5000).optional().describe('evaluate at most this many images'),
      approvalId: approvalIdField('evaluate_model'),
    }),
    async handler(i) {
      const { approvalId, ...rest } = i.body;
      return tool(i, 'evaluate_model', { modelVersion: i.params.ref, ...rest }, approvalId);
    },
  }),
  route({
    method: 'post',
    path: '/api/models/:ref/promote',
    access: 'operator',
    tag: 'models',
    mutation: { tool: 'promote_model' },
    summary: 'Promotes a version to a stage through the promote_model tool; needs an approved approval for these exact arguments',
    params: refParams,
    body: z.object({ stage: z.enum(['candidate', 'staging', 'production']).describe('stage'), approvalId: approvalIdField('promote_model') }),
    async handler(i) {
      return tool(i, 'promote_model', { modelVersion: i.params.ref, stage: i.body.stage }, i.body.approvalId);
    },
  }),

  route({
    method: 'get',
    path: '/api/jobs',
    access: 'viewer',
    tag: 'training',
    summary: 'Training jobs, newest first',
    query: z.object({ status: z.string().max(32).optional().describe('only jobs in this state'), ...page }),
    async handler({ ctx, s, query }) {
      return { jobs: await need(s.training, 'training').list(ctx, query as never) };
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs/:id',
    access: 'viewer',
    tag: 'training',
    summary: 'One training job',
    params: idParams,
    async handler({ ctx, s, params }) {
      return need(s.training, 'training').get(ctx, params.id);
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs/:id/metrics',
    access: 'viewer',
    tag: 'training',
    summary: 'Metrics per epoch of a training job (current attempt by default)',
    params: idParams,
    query: z.object({ attempt: z.coerce.number().int().min(1).max(100).optional() }),
    async handler({ ctx, s, params, query }) {
      return { epochs: await need(s.training, 'training').metrics(ctx, params.id, query) };
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs/:id/logs',
    access: 'viewer',
    tag: 'training',
    summary: 'Log lines of a training job',
    params: idParams,
    query: z.object({ tail: z.coerce.number().int().min(1).max(10_000).optional().describe('last N lines') }),
    async handler({ ctx, s, params, query }) {
      return { lines: await need(s.training, 'training').logs(ctx, params.id, query.tail === undefined ? {} : { tail: query.tail }) };
    },
  }),

  route({
    method: 'get',
    path: '/api/devices',
    access: 'viewer',
    tag: 'fleet',
    summary: 'Devices with model version, health and last seen; `tag` selects a line, e.g. line-3',
    query: z.object({ tag: z.string().max(100).optional(), online: z.enum(['true', 'false']).optional() }),
    async handler({ ctx, s, query }) {
      const filter = { ...(query.tag ? { tag: query.tag } : {}), ...(query.online ? { online: query.online === 'true' } : {}) };
      const devices = await need(s.fleet, 'the fleet').list(ctx, filter);
      const refs = await modelRefsOf(ctx, s, devices.flatMap((d) => [d.modelVersionId, d.previousModelVersionId]));
      const ref = (mv: string | null) => (mv === null ? null : (refs.get(mv) ?? mv));
      return { devices: devices.map((d) => ({ ...d, model: ref(d.modelVersionId), previousModel: ref(d.previousModelVersionId) })) };
    },
  }),
  route({
    method: 'get',
    path: '/api/devices/:id',
    access: 'viewer',
    tag: 'fleet',
    summary: 'One device',
    params: idParams,
    async handler({ ctx, s, params }) {
      const d = await need(s.fleet, 'the fleet').get(ctx, params.id);
      const refs = await modelRefsOf(ctx, s, [d.modelVersionId, d.previousModelVersionId]);
      const ref = (mv: string | null) => (mv === null ? null : (refs.get(mv) ?? mv));
      return { ...d, model: ref(d.modelVersionId), previousModel: ref(d.previousModelVersionId) };
    },
  }),
  route({
    method: 'post',
    path: '/api/fleet/devices/:id/feedback-uploads',
    access: 'viewer',
    tag: 'fleet',
    mutation: { exempt: 'device-upload-url', why: 'presigns short-lived upload URLs and stores nothing; an uploaded frame joins training data only through review_feedback, an approved tool' },
    summary: 'Presigned PUT URLs a registered device uploads uncertain frames to (a device token with scope device:<id>, or an admin); one image each, JPEG by default',
    params: idParams,
    body: z.object({
      count: z.number().int().min(1).max(10).describe('how many upload URLs (1 to 10)'),
      contentType: z.enum(['image/jpeg', 'image/png', 'image/webp']).optional().describe('type of the images (default image/jpeg)'),
    }),
    response: z.object({ uploads: z.array(z.object({ url: z.string(), key: z.string(), expiresAt: z.number() })) }),
    async handler({ ctx, s, params, body }) {
      // who may ask, and whether the device is registered in this project, is checked by the service
      return { uploads: await need(s.feedback, 'feedback').issueDeviceUploadUrls(ctx, params.id, body) };
    },
  }),
  route({
    method: 'get',
    path: '/api/rollouts',
    access: 'viewer',
    tag: 'fleet',
    summary: 'Rollouts, newest first, with progress per device',
    query: z.object({ state: z.string().max(32).optional(), ...page }),
    async handler({ ctx, s, query }) {
      return { rollouts: await need(s.rollouts, 'rollouts').list(ctx, query as never) };
    },
  }),
  route({
    method: 'get',
    path: '/api/rollouts/:id',
    access: 'viewer',
    tag: 'fleet',
    summary: 'One rollout with the state of every device',
    params: idParams,
    async handler({ ctx, s, params }) {
      return need(s.rollouts, 'rollouts').status(ctx, params.id);
    },
  }),

  route({
    method: 'get',
    path: '/api/feedback',
    access: 'viewer',
    tag: 'feedback',
    summary: 'The feedback review queue (oldest first)',
    query: z.object({ status: z.string().max(32).optional(), deviceId: z.string().max(128).optional(), ...page }),
    async handler({ ctx, s, query }) {
      return need(s.feedback, 'feedback').list(ctx, query as never);
    },
  }),
  route({
    method: 'get',
    path: '/api/feedback/:id',
    access: 'viewer',
    tag: 'feedback',
    summary: 'One feedback sample with its predicted boxes and a short-lived image URL',
    params: idParams,
    async handler({ ctx, s, params }) {
      const fb = need(s.feedback, 'feedback');
      const sample = await fb.get(ctx, params.id);
      return { ...sample, url: await fb.imageUrl(ctx, params.id) };
    },
  }),
  route({
    method: 'post',
    path: '/api/feedback/:id/review',
    access: 'operator',
    tag: 'feedback',
    mutation: { tool: 'review_feedback' },
    summary: 'Accepts (optionally with corrected boxes) or rejects a feedback sample through the review_feedback tool; needs an approved approval for these exact arguments',
    params: idParams,
    body: reviewFeedbackTool.input.omit({ sampleId: true }).extend({ approvalId: approvalIdField('review_feedback') }),
    async handler(i) {
      const { approvalId, ...review } = i.body;
      return tool(i, 'review_feedback', { sampleId: i.params.id, ...review }, approvalId);
    },
  }),

  route({
    method: 'get',
    path: '/api/approvals',
    access: 'viewer',
    tag: 'approvals',
    summary: 'Approval requests of the project (the inbox), newest first',
    query: z.object({ status: z.enum(['pending', 'approved', 'rejected', 'executed', 'expired']).optional(), threadId: z.string().max(191).optional(), ...page }),
    async handler({ ctx, s, query }) {
      return { approvals: await s.approvals.list(ctx, query) };
    },
  }),
  route({
    method: 'post',
    path: '/api/approvals',
    access: 'operator',
    tag: 'approvals',
    mutation: { exempt: 'approval-request', why: 'asking for an approval is the gate itself: nothing runs until someone decides and the tool runs through runTool' },
    summary: 'Asks approval for a tool call with exact arguments (risk from the tool registry)',
    status: 201,
    body: z.object({ tool: z.string().min(1).max(100).describe('tool name'), args: anyObject.describe('exact arguments'), reason: z.string().trim().min(1).max(2000).describe('why the step is needed') }),
    async handler({ ctx, s, body }) {
      const registry = s.tools.registry;
      const args = registry.parseInput(body.tool, body.args);
      return s.approvals.request(ctx, { tool: body.tool, args, risk: registry.get(body.tool).risk, reason: body.reason });
    },
  }),
  route({
    method: 'get',
    path: '/api/approvals/:id',
    access: 'viewer',
    tag: 'approvals',
    summary: 'One approval request with its arguments, risk, policy and decision',
    params: idParams,
    async handler({ ctx, s, params }) {
      return s.approvals.get(ctx, params.id);
    },
  }),
  route({
    method: 'post',
    path: '/api/approvals/:id/decide',
    access: 'operator',
    tag: 'approvals',
    mutation: { tool: 'decide_approval' },
    summary: 'Approves, edits or rejects a request under its policy (through the decide_approval tool); deciding twice changes nothing',
    params: idParams,
    body: decisionBody,
    async handler(i) {
      return tool(i, 'decide_approval', { approvalId: i.params.id, ...i.body });
    },
  }),

  route({
    method: 'get',
    path: '/api/audit',
    access: 'operator',
    tag: 'audit',
    summary: 'Audit log entries, filtered by conversation, user, tool, action and time',
    query: z.object({
      threadId: z.string().max(191).optional(),
      userId: z.string().max(191).optional(),
      tool: z.string().max(100).optional(),
      action: z.string().max(100).optional(),
      from: z.coerce.number().int().min(0).optional().describe('epoch ms'),
      to: z.coerce.number().int().min(0).optional().describe('epoch ms'),
      order: z.enum(['asc', 'desc']).optional(),
      ...page,
    }),
    async handler({ ctx, s, query }) {
      const result = await s.audit.query({ ...query, projectId: ctx.projectId });
      // people read names: each entry's actor gets the member's name (ids stay for links and filters)
      const names = new Map((await s.accounts.listMembers(ctx.projectId)).map((m) => [m.userId, m.name]));
      return { ...result, entries: result.entries.map((e) => ({ ...e, actorName: names.get(e.actor.id) ?? null })) };
    },
  }),
  route({
    method: 'get',
    path: '/api/audit/verify',
    access: 'operator',
    tag: 'audit',
    summary:
      "Verifies the project's audit hash chain (edits, deletions, reordering, truncation: signed head, checkpoints and anchor file)",
    query: z.object({
      sinceCheckpoint: z
        .enum(['true', 'false'])
        .optional()
        .describe('true: recompute only the entries after the latest signed checkpoint'),
    }),
    async handler({ ctx, s, query }) {
      return s.audit.verify(ctx.projectId, { sinceCheckpoint: query.sinceCheckpoint === 'true' });
    },
  }),

  route({
    method: 'get',
    path: '/api/tools',
    access: 'viewer',
    tag: 'tools',
    summary: 'Every tool with its JSON schemas and risk (used to build edit forms)',
    async handler({ s }) {
      return { tools: s.tools.registry.jsonSchemas() };
    },
  }),
  route({
    method: 'post',
    path: '/api/tools/:name',
    access: 'viewer',
    tag: 'tools',
    mutation: { tool: ':name' },
    summary: 'Runs one tool through runTool (role, approval and audit checks apply; writes need an approvalId)',
    params: z.object({ name: z.string().regex(/^[a-z][a-z0-9_]{0,99}$/).describe('tool name') }),
    body: z.object({ args: anyObject.default({}).describe('tool arguments'), approvalId: z.string().min(1).max(64).optional().describe('approval covering a write or critical call') }),
    async handler(i) {
      return { output: await tool(i, i.params.name, i.body.args, i.body.approvalId) };
    },
  }),

  route({
    method: 'get',
    path: '/api/conversations',
    access: 'viewer',
    tag: 'chat',
    summary: 'Conversations of the project, newest first',
    query: z.object({ mine: z.enum(['true', 'false']).optional(), limit: page.limit }),
    async handler({ ctx, s, query }) {
      return { conversations: await need(s.agent, 'the chat agent').listThreads(ctx, { mine: query.mine === 'true', limit: query.limit ?? 50 }) };
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations',
    access: 'viewer',
    tag: 'chat',
    mutation: { agent: true },
    summary: 'Starts a conversation; answers when the agent pauses (approval, wait) or ends. Events stream over the socket room of the conversation.',
    status: 201,
    body: messageBody.extend({ title: z.string().trim().max(200).optional() }),
    async handler({ ctx, s, body }) {
      return need(s.agent, 'the chat agent').startConversation(ctx, { message: body.message, ...(body.title ? { title: body.title } : {}) });
    },
  }),
  route({
    method: 'get',
    path: '/api/conversations/:id',
    access: 'viewer',
    tag: 'chat',
    summary: 'A conversation: plan, steps, pending approval, wait and report',
    params: idParams,
    async handler({ ctx, s, params }) {
      return need(s.agent, 'the chat agent').getThread(ctx, params.id);
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations/:id/messages',
    access: 'viewer',
    tag: 'chat',
    mutation: { agent: true },
    summary: 'Sends a new request to a conversation',
    params: idParams,
    body: messageBody,
    async handler({ ctx, s, params, body }) {
      return need(s.agent, 'the chat agent').sendMessage(ctx, params.id, body.message);
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations/:id/decide',
    access: 'operator',
    tag: 'chat',
    mutation: { agent: true },
    summary: 'Decides the approval the conversation waits for, then resumes it',
    params: idParams,
    body: decisionBody.extend({ approvalId: z.string().min(1).max(64).describe('the pending approval') }),
    async handler({ ctx, s, params, body }) {
      const { approvalId, decision, args, reason } = body;
      return need(s.agent, 'the chat agent').decide(ctx, params.id, { approvalId, decision, ...(args ? { args } : {}), ...(reason ? { reason } : {}) });
    },
  }),
  route({
    method: 'post',
    path: '/api/conversations/:id/retry',
    access: 'operator',
    tag: 'chat',
    mutation: { agent: true },
    summary: 'Continues a conversation that stopped on an error from its last saved step',
    params: idParams,
    async handler({ ctx, s, params }) {
      return need(s.agent, 'the chat agent').retry(ctx, params.id);
    },
  }),

  // Linking your own chat identity is an account action of the signed-in person (like sign-in or an
  // API token), not a tool: the service checks the code and writes the audit entry itself.
  route({
    method: 'get',
    path: '/api/chat-links',
    access: 'viewer',
    tag: 'auth',
    summary: 'The Slack and Mattermost accounts linked to yours (each acts as you in the chat)',
    response: z.object({ links: z.array(chatLinkView) }),
    async handler({ ctx, s }) {
      return { links: await s.chatLinks.listFor(ctx.user.userId) };
    },
  }),
  route({
    method: 'get',
    path: '/api/chat-links/pending/:code',
    access: 'viewer',
    tag: 'auth',
    summary: 'Who asked to link with this "/vision link" code (chat user and workspace); changes nothing',
    params: z.object({ code: chatLinkCode }),
    response: pendingChatLinkView,
    async handler({ ctx, s, params }) {
      if (ctx.user.kind !== 'user') throw new PlatformError('forbidden', 'only a signed-in person can link a chat account; sign in to the web app');
      return s.chatLinks.describeCode(params.code);
    },
  }),
  route({
    method: 'post',
    path: '/api/chat-links',
    access: 'viewer',
    tag: 'auth',
    mutation: { exempt: 'own-credential', why: "links the caller's own chat identity after they confirmed the code; the chat-link service checks and audits it" },
    summary: 'Confirms a "/vision link" code: the chat user it names then acts as you. Show the chat user and workspace first (GET /api/chat-links/pending/:code)',
    status: 201,
    body: z.object({
      code: chatLinkCode,
      confirm: z.literal(true, 'send "confirm": true after showing the person which chat user and workspace they link').describe('true: the person saw who asks and confirmed'),
    }),
    response: chatLinkView,
    async handler({ ctx, s, body }) {
      return s.chatLinks.confirm({ userId: ctx.user.userId, kind: ctx.user.kind, projectId: ctx.projectId }, body.code);
    },
  }),
  route({
    method: 'delete',
    path: '/api/chat-links/:id',
    access: 'viewer',
    tag: 'auth',
    mutation: { exempt: 'own-credential', why: "only takes access away: removes one of the caller's own chat links (audited by the chat-link service)" },
    summary: 'Removes one of your chat account links; that chat user then acts as nobody',
    params: idParams,
    response: okSchema,
    async handler({ ctx, s, params }) {
      await s.chatLinks.unlink({ userId: ctx.user.userId, kind: ctx.user.kind, projectId: ctx.projectId }, params.id);
      return { ok: true };
    },
  }),
  route({
    method: 'get',
    path: '/api/openapi.json',
    access: 'viewer',
    tag: 'ops',
    summary: 'This OpenAPI 3.1 document, generated from the route table',
    async handler() {
      const { openApiDocument } = await import('./openapi.js');
      return openApiDocument(ROUTES);
    },
  }),
  route({
    method: 'get',
    path: '/metrics',
    access: 'admin',
    tag: 'ops',
    summary: 'Prometheus metrics (admins only on the main port; METRICS_PORT serves them on loopback)',
    raw: true,
    async handler({ res, metrics }) {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  }),
];

/** Routes served outside the table without a principal (health, the sign-in page, static assets). */
export const PUBLIC_PATHS = ['/healthz', '/readyz', '/login.html', '/assets/*', '/vendor/*'] as const;

/** The error body every route answers with on failure. */
export const ERROR_SCHEMA = errorSchema;
