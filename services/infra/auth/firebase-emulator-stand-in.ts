import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A STAND-IN for the Firebase Auth emulator, for tests: it answers only the emulator REST endpoint
 * firebase-admin calls while verifying an emulator ID token (`accounts:lookup`, which checks the user
 * exists and is not disabled). Tokens are unsigned (alg "none"), exactly as the real emulator issues them.
 */
export class FirebaseEmulatorStandIn {
  /** Users the stand-in knows, by uid. */
  readonly users = new Map<string, { email: string; disabled?: boolean }>();
  /** Every uid looked up, in order. */
  readonly lookups: string[] = [];
  private server: http.Server | undefined;

  /** Starts on an ephemeral port and returns `host:port` for FIREBASE_AUTH_EMULATOR_HOST. */
  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const match = req.url?.match(/^\/identitytoolkit\.googleapis\.com\/v1\/projects\/([^/]+)\/accounts:lookup/);
        res.setHeader('content-type', 'application/json');
        if (req.method !== 'POST' || !match) {
          res.statusCode = 404;
          res.end(JSON.stringify({ error: { code: 404, message: 'NOT_FOUND' } }));
          return;
        }
        const ids = (JSON.parse(body || '{}') as { localId?: string[] }).localId ?? [];
        this.lookups.push(...ids);
        const found = ids.flatMap((id) => {
          const u = this.users.get(id);
          return u ? [{ localId: id, email: u.email, disabled: u.disabled ?? false }] : [];
        });
        res.end(JSON.stringify(found.length > 0 ? { kind: 'identitytoolkit#GetAccountInfoResponse', users: found } : { kind: 'identitytoolkit#GetAccountInfoResponse' }));
      });
    });
    const server = this.server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server) await new Promise((r) => server.close(r));
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
}
