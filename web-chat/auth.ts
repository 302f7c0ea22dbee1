import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { parse as parseCookies, serialize } from 'cookie';
import type { IncomingMessage } from 'node:http';
import type { Request, Response } from 'express';
import { DEFAULT_PROJECT_ID, type AccountService } from '../services/accounts/index.js';
import { roleAtLeast, type CallContext, type Principal, type Role } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/log.js';

/** Name of the HttpOnly session cookie. */
export const SESSION_COOKIE = 'via_session';
/** Name of the readable double-submit CSRF cookie. */
export const CSRF_COOKIE = 'via_csrf';
/** Header a cookie-authenticated mutating request must carry with the CSRF cookie's value. */
export const CSRF_HEADER = 'x-csrf-token';
/** Header choosing the project of a request (default project when absent). */
export const PROJECT_HEADER = 'x-project-id';
/** Token scopes that allow the REST API and sockets. */
export const API_SCOPES = ['*', 'api'] as const;

/** Who made a request, how, and in which project. */
export interface RequestAuth {
  principal: Principal;
  projectId: string;
  via: 'cookie' | 'token' | 'firebase';
}

/** What authentication needs. */
export interface AuthDeps {
  accounts: AccountService;
  log: Logger;
  firebase: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const FIREBASE_CACHE_MS = 5 * 60_000;

/** Resolves sessions, API tokens and Firebase ID tokens to principals; one per server. */
export class Authenticator {
  private readonly firebaseSessions = new Map<string, { session: string; until: number }>();

  constructor(private readonly deps: AuthDeps) {}

  /** Authenticates an HTTP request or socket handshake from its headers; throws `unauthenticated` / `forbidden`. */
  async authenticate(headers: IncomingMessage['headers'], projectHint?: string): Promise<RequestAuth> {
    const projectId = cleanProject(projectHint ?? headerOf(headers, PROJECT_HEADER));
    const authz = headerOf(headers, 'authorization');
    if (authz !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(authz);
      if (!m) throw new PlatformError('unauthenticated', 'the Authorization header must be "Bearer <token>"');
      const token = m[1]!;
      if (token.startsWith('via_')) {
        const principal = await this.deps.accounts.authenticateToken(
          token,
          projectHint ?? headerOf(headers, PROJECT_HEADER),
        );
        if (!principal.scopes.some((s) => (API_SCOPES as readonly string[]).includes(s))) {
          throw new PlatformError(
            'forbidden',
            `API token ${principal.tokenId} lacks the "api" scope; create a token with scope "api" (or "*") for the REST API`,
          );
        }
        return { principal, projectId: principal.projectId, via: 'token' };
      }
      if (!this.deps.firebase)
        throw new PlatformError(
          'unauthenticated',
          'unknown bearer token; use an API token ("via_…") created under Settings → API tokens',
        );
      const session = await this.firebaseSession(token);
      return {
        principal: await this.deps.accounts.authenticateSession(session, projectId),
        projectId,
        via: 'firebase',
      };
    }
    const session = cookiesOf(headers)[SESSION_COOKIE];
    if (session === undefined || session === '')
      throw new PlatformError('unauthenticated', 'sign in first: no session cookie or API token was sent');
    return {
      principal: await this.deps.accounts.authenticateSession(session, projectId),
      projectId,
      via: 'cookie',
    };
  }

  private async firebaseSession(idToken: string): Promise<string> {
    const key = createHash('sha256').update(idToken).digest('hex');
    const now = Date.now();
    const hit = this.firebaseSessions.get(key);
    if (hit && hit.until > now) return hit.session;
    const login = await this.deps.accounts.loginWithIdToken(idToken);
    if (this.firebaseSessions.size > 10_000) this.firebaseSessions.clear();
    this.firebaseSessions.set(key, { session: login.sessionToken, until: now + FIREBASE_CACHE_MS });
    return login.sessionToken;
  }
}

/** Throws `forbidden` unless the principal's role is at least `needed`. */
export function requireRole(auth: RequestAuth, needed: Role): void {
  if (!roleAtLeast(auth.principal.role, needed)) {
    throw new PlatformError(
      'forbidden',
      `this needs the ${needed} role or above in project "${auth.projectId}"; you are ${auth.principal.role}. Ask an admin for access.`,
    );
  }
}

/**
 * The CSRF token of a session: an HMAC keyed by the session token. The session cookie is HttpOnly and
 * never leaves the server, so a token planted in a cookie (another subdomain, a MITM on plain HTTP)
 * cannot match the victim's session; a plain double-submit only compared cookie with header.
 */
export function csrfTokenOf(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('visioninapp csrf v1').digest('base64url');
}

/** Refuses a cookie-authenticated mutating request whose CSRF header is not the token bound to its session. */
export function checkCsrf(req: Request, auth: RequestAuth): void {
  if (auth.via !== 'cookie' || SAFE_METHODS.has(req.method)) return;
  const session = cookiesOf(req.headers)[SESSION_COOKIE] ?? '';
  const header = headerOf(req.headers, CSRF_HEADER) ?? '';
  const a = Buffer.from(session === '' ? '' : csrfTokenOf(session));
  const b = Buffer.from(header);
  if (a.length < 16 || a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new PlatformError('forbidden', 'missing or wrong CSRF token; reload the page and try again');
  }
}

/** Sets the session and CSRF cookies after a sign-in; returns the CSRF token for the page. */
export function setSessionCookies(
  req: Request,
  res: Response,
  session: { sessionToken: string; expiresAt: number },
): string {
  const csrf = csrfTokenOf(session.sessionToken);
  const common = {
    path: '/',
    sameSite: 'lax' as const,
    secure: req.secure,
    expires: new Date(session.expiresAt),
  };
  res.append('Set-Cookie', serialize(SESSION_COOKIE, session.sessionToken, { ...common, httpOnly: true }));
  res.append('Set-Cookie', serialize(CSRF_COOKIE, csrf, { ...common, httpOnly: false }));
  return csrf;
}

/** Clears the session and CSRF cookies. */
export function clearSessionCookies(req: Request, res: Response): void {
  const common = { path: '/', sameSite: 'lax' as const, secure: req.secure, expires: new Date(0) };
  res.append('Set-Cookie', serialize(SESSION_COOKIE, '', { ...common, httpOnly: true }));
  res.append('Set-Cookie', serialize(CSRF_COOKIE, '', { ...common, httpOnly: false }));
}

/** The cookies of a request. */
export function cookiesOf(headers: IncomingMessage['headers']): Record<string, string | undefined> {
  const raw = headers.cookie;
  return raw ? parseCookies(raw) : {};
}

/** A call context for an authenticated request. */
export function callContext(auth: RequestAuth, log: Logger, requestId?: string): CallContext {
  const id = requestId && /^[\w.-]{1,64}$/.test(requestId) ? requestId : newId('req');
  return {
    user: auth.principal,
    projectId: auth.projectId,
    requestId: id,
    log: log.child({ requestId: id }),
  };
}

function headerOf(headers: IncomingMessage['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function cleanProject(value: string | undefined): string {
  if (value === undefined || value === '') return DEFAULT_PROJECT_ID;
  if (!/^[\w-]{1,64}$/.test(value))
    throw new PlatformError(
      'invalid_input',
      `project id "${value.slice(0, 80)}" is malformed; use letters, digits, "-" or "_"`,
    );
  return value;
}
