import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A user of the stand-in: `password` enables Web SDK sign-in, `claims` become custom claims in its ID tokens. */
export interface StandInUser {
  email: string;
  /** Whether the e-mail is verified (default true), as in the user record and Web SDK tokens. */
  emailVerified?: boolean;
  /** Epoch seconds before which the user's tokens are revoked (`validSince`, set by revokeRefreshTokens). */
  validSince?: number;
  disabled?: boolean;
  password?: string;
  name?: string;
  claims?: Record<string, unknown>;
}

/**
 * A STAND-IN for the Firebase Auth emulator, for tests (there is no emulator on this machine). It speaks
 * the emulator's REST protocol for exactly what our code calls:
 * - firebase-admin verifying an ID token: `projects/{id}/accounts:lookup` (the user exists, not disabled);
 * - the Firebase Web SDK after `connectAuthEmulator`: `accounts:signInWithPassword`, `accounts:lookup`
 *   by ID token, and `securetoken` refreshes, with the CORS headers a browser needs.
 * Tokens are unsigned (alg "none"), exactly as the real emulator issues them.
 */
export class FirebaseEmulatorStandIn {
  /** Users the stand-in knows, by uid. */
  readonly users = new Map<string, StandInUser>();
  /** Every uid looked up by firebase-admin, in order. */
  readonly lookups: string[] = [];
  /** Every request path (without the query), in order: what the clients actually called. */
  readonly requests: string[] = [];
  private server: http.Server | undefined;
  private readonly refreshTokens = new Map<string, string>();

  /** `projectId`: the project of the ID tokens minted for Web SDK sign-ins. */
  constructor(private readonly opts: { projectId?: string } = {}) {}

  /** Starts on an ephemeral port and returns `host:port` for FIREBASE_AUTH_EMULATOR_HOST. */
  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => this.handle(req, res, body));
    });
    const server = this.server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }

  /** Mints an emulator-style ID token (unsigned, alg "none") for `project` with the given claims (`sub` at least). */
  static token(project: string, claims: Record<string, unknown>): string {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = {
      iss: `https://securetoken.google.com/${project}`,
      aud: project,
      auth_time: now - 5,
      iat: now - 5,
      exp: now + 3600,
      user_id: claims.sub,
      firebase: { identities: {}, sign_in_provider: 'password' },
      ...claims,
    };
    return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    this.requests.push(`${req.method} ${url.pathname}`);
    // the browser calls from the app's origin, as it does against the real emulator
    res.setHeader('access-control-allow-origin', req.headers.origin ?? '*');
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    res.setHeader(
      'access-control-allow-headers',
      req.headers['access-control-request-headers'] ?? 'content-type',
    );
    res.setHeader('content-type', 'application/json');
    if (req.method === 'OPTIONS') {
      res.statusCode = 204;
      res.end();
      return;
    }
    const send = (status: number, json: unknown) => {
      res.statusCode = status;
      res.end(JSON.stringify(json));
    };
    const error = (message: string) =>
      send(400, {
        error: { code: 400, message, errors: [{ message, reason: 'invalid', domain: 'global' }] },
      });
    let input: Record<string, unknown>;
    try {
      input = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      error('INVALID_JSON');
      return;
    }
    const path = url.pathname;
    if (
      req.method === 'POST' &&
      /^\/identitytoolkit\.googleapis\.com\/v1\/projects\/[^/]+\/accounts:lookup$/.test(path)
    ) {
      const ids = (input.localId as string[] | undefined) ?? [];
      this.lookups.push(...ids);
      const found = ids.flatMap((id) => {
        const u = this.users.get(id);
        return u ? [this.record(id, u)] : [];
      });
      send(
        200,
        found.length > 0
          ? { kind: 'identitytoolkit#GetAccountInfoResponse', users: found }
          : { kind: 'identitytoolkit#GetAccountInfoResponse' },
      );
      return;
    }
    if (req.method === 'POST' && path === '/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword') {
      const email = String(input.email ?? '').toLowerCase();
      const found = [...this.users.entries()].find(([, u]) => u.email.toLowerCase() === email);
      if (found === undefined || found[1].password === undefined || found[1].password !== input.password) {
        error('INVALID_LOGIN_CREDENTIALS');
        return;
      }
      const [uid, user] = found;
      if (user.disabled) {
        error('USER_DISABLED');
        return;
      }
      send(200, {
        kind: 'identitytoolkit#VerifyPasswordResponse',
        registered: true,
        localId: uid,
        email: user.email,
        displayName: user.name ?? '',
        ...this.tokens(uid, user),
      });
      return;
    }
    if (req.method === 'POST' && path === '/identitytoolkit.googleapis.com/v1/accounts:lookup') {
      const uid = this.uidOf(String(input.idToken ?? ''));
      const user = uid === undefined ? undefined : this.users.get(uid);
      if (uid === undefined || user === undefined) {
        error('INVALID_ID_TOKEN');
        return;
      }
      send(200, { kind: 'identitytoolkit#GetAccountInfoResponse', users: [this.record(uid, user)] });
      return;
    }
    if (req.method === 'POST' && path === '/securetoken.googleapis.com/v1/token') {
      const params = new URLSearchParams(body);
      const uid = this.refreshTokens.get(String(input.refresh_token ?? params.get('refresh_token') ?? ''));
      const user = uid === undefined ? undefined : this.users.get(uid);
      if (uid === undefined || user === undefined) {
        error('INVALID_REFRESH_TOKEN');
        return;
      }
      const t = this.tokens(uid, user);
      send(200, {
        access_token: t.idToken,
        id_token: t.idToken,
        refresh_token: t.refreshToken,
        expires_in: t.expiresIn,
        token_type: 'Bearer',
        user_id: uid,
        project_id: this.project(),
      });
      return;
    }
    send(404, { error: { code: 404, message: 'NOT_FOUND' } });
  }

  private project(): string {
    if (this.opts.projectId === undefined)
      throw new Error('FirebaseEmulatorStandIn needs a projectId to sign users in');
    return this.opts.projectId;
  }

  private tokens(
    uid: string,
    user: StandInUser,
  ): { idToken: string; refreshToken: string; expiresIn: string } {
    const idToken = FirebaseEmulatorStandIn.token(this.project(), {
      sub: uid,
      email: user.email,
      email_verified: user.emailVerified ?? true,
      ...(user.name ? { name: user.name } : {}),
      ...user.claims,
    });
    const refreshToken = randomBytes(16).toString('hex');
    this.refreshTokens.set(refreshToken, uid);
    return { idToken, refreshToken, expiresIn: '3600' };
  }

  private uidOf(idToken: string): string | undefined {
    try {
      const payload = JSON.parse(Buffer.from(idToken.split('.')[1] ?? '', 'base64url').toString()) as {
        sub?: unknown;
      };
      return typeof payload.sub === 'string' ? payload.sub : undefined;
    } catch {
      return undefined;
    }
  }

  private record(uid: string, u: StandInUser) {
    return {
      localId: uid,
      email: u.email,
      emailVerified: u.emailVerified ?? true,
      displayName: u.name,
      disabled: u.disabled ?? false,
      ...(u.validSince === undefined ? {} : { validSince: String(u.validSince) }),
      providerUserInfo: [{ providerId: 'password', email: u.email, federatedId: u.email, rawId: u.email }],
      ...(u.claims ? { customAttributes: JSON.stringify(u.claims) } : {}),
      createdAt: '1700000000000',
      lastLoginAt: String(Date.now()),
    };
  }
}
