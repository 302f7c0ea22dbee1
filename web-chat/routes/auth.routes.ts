import { z } from 'zod';
import { ROLES } from '../../core/context.js';
import { PlatformError } from '../../core/errors.js';
import { clearSessionCookies, cookiesOf, csrfTokenOf, SESSION_COOKIE, setSessionCookies } from '../auth.js';
import {
  type RouteDef,
  anyObject,
  chatLinkCode,
  chatLinkView,
  featuresOf,
  idParams,
  meSchema,
  okSchema,
  pendingChatLinkView,
  route,
  signInConfigSchema,
} from './route.js';

/** The auth routes of the REST API. */
export const authRoutes: RouteDef[] = [
  route({
    method: 'post',
    path: '/api/auth/login',
    access: 'public',
    tag: 'auth',
    mutation: {
      exempt: 'sign-in',
      why: 'no principal exists yet; the account service checks the password, locks an account after repeated failures and opens the session',
    },
    summary: 'Sign in with email and password; sets the HttpOnly session cookie and the CSRF cookie',
    body: z.object({
      email: z.string().trim().min(3).max(320).describe('account email'),
      password: z.string().min(1).max(1024).describe('account password'),
    }),
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
    summary:
      'How to sign in: local accounts, or Firebase with the Web SDK configuration (public values only)',
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
    mutation: {
      exempt: 'sign-in',
      why: 'no principal exists yet; the account service verifies the Firebase ID token and opens the session',
    },
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
        ...(a.via === 'cookie'
          ? { csrfToken: csrfTokenOf(cookiesOf(req.headers)[SESSION_COOKIE] ?? '') }
          : {}),
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
    mutation: {
      exempt: 'own-credential',
      why: "creates the caller's own API token with a role no higher than theirs (checked in the account service)",
    },
    summary:
      'Creates an API token with a role no higher than yours; the token is shown only in this response',
    status: 201,
    body: z.object({
      name: z.string().trim().min(1).max(200).describe('what the token is for'),
      role: z.enum(ROLES).describe('role of the token, at most yours'),
      scopes: z
        .array(z.string().max(64))
        .min(1)
        .max(20)
        .default(['api'])
        .describe('"api" for REST and sockets, "mcp" for MCP, "*" for all'),
      expiresInDays: z
        .number()
        .positive()
        .max(3650)
        .optional()
        .describe('lifetime in days; none when omitted'),
    }),
    async handler({ ctx, s, body }) {
      if (ctx.user.kind === 'token')
        throw new PlatformError('forbidden', 'API tokens cannot create API tokens; sign in as a person');
      return s.accounts.createApiToken({ userId: ctx.user.userId, projectId: ctx.projectId, ...body });
    },
  }),
  route({
    method: 'delete',
    path: '/api/tokens/:id',
    access: 'viewer',
    tag: 'auth',
    mutation: {
      exempt: 'own-credential',
      why: 'only takes access away: your token, or as an admin any token of this project (checked in the account service)',
    },
    summary: 'Revokes one of your API tokens (admins: any token of this project)',
    params: idParams,
    response: okSchema,
    async handler({ ctx, s, params }) {
      await s.accounts.revokeApiToken(params.id, {
        userId: ctx.user.userId,
        projectId: ctx.projectId,
        role: ctx.user.role,
      });
      return { ok: true };
    },
  }),

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
      if (ctx.user.kind !== 'user')
        throw new PlatformError(
          'forbidden',
          'only a signed-in person can link a chat account; sign in to the web app',
        );
      return s.chatLinks.describeCode(params.code);
    },
  }),
  route({
    method: 'post',
    path: '/api/chat-links',
    access: 'viewer',
    tag: 'auth',
    mutation: {
      exempt: 'own-credential',
      why: "links the caller's own chat identity after they confirmed the code; the chat-link service checks and audits it",
    },
    summary:
      'Confirms a "/vision link" code: the chat user it names then acts as you. Show the chat user and workspace first (GET /api/chat-links/pending/:code)',
    status: 201,
    body: z.object({
      code: chatLinkCode,
      confirm: z
        .literal(
          true,
          'send "confirm": true after showing the person which chat user and workspace they link',
        )
        .describe('true: the person saw who asks and confirmed'),
    }),
    response: chatLinkView,
    async handler({ ctx, s, body }) {
      return s.chatLinks.confirm(
        { userId: ctx.user.userId, kind: ctx.user.kind, projectId: ctx.projectId },
        body.code,
      );
    },
  }),
  route({
    method: 'delete',
    path: '/api/chat-links/:id',
    access: 'viewer',
    tag: 'auth',
    mutation: {
      exempt: 'own-credential',
      why: "only takes access away: removes one of the caller's own chat links (audited by the chat-link service)",
    },
    summary: 'Removes one of your chat account links; that chat user then acts as nobody',
    params: idParams,
    response: okSchema,
    async handler({ ctx, s, params }) {
      await s.chatLinks.unlink(
        { userId: ctx.user.userId, kind: ctx.user.kind, projectId: ctx.projectId },
        params.id,
      );
      return { ok: true };
    },
  }),
];
