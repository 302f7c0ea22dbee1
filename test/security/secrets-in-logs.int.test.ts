import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTempMysqlDatabase,
  freePort,
  SERVICE_URLS,
  skipWithoutService,
  uniqueSuffix,
} from '../services.fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');

const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

function secret(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

/** A real `visioninapp` process whose stdout and stderr are captured whole. */
function start(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(skip)('secrets never reach the logs of a real visioninapp serve', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('keeps the database password, signing secrets, API keys, passwords, tokens and cookies out of stdout and stderr', async () => {
    const { createConnection } = await import('mysql2/promise');
    const db = await createTempMysqlDatabase();
    cleanups.push(db.drop);
    const dbUser = `vsec_${uniqueSuffix()}`;
    const dbPassword = secret('DbPw-');
    const admin = await createConnection({ uri: SERVICE_URLS.mysql });
    await admin.query(`CREATE USER '${dbUser}'@'%' IDENTIFIED BY '${dbPassword}'`);
    await admin.query(`CREATE USER '${dbUser}'@'localhost' IDENTIFIED BY '${dbPassword}'`);
    const dbName = new URL(db.url).pathname.slice(1);
    await admin.query(`GRANT ALL ON \`${dbName}\`.* TO '${dbUser}'@'%'`);
    await admin.query(`GRANT ALL ON \`${dbName}\`.* TO '${dbUser}'@'localhost'`);
    await admin.end();
    cleanups.push(async () => {
      const c = await createConnection({ uri: SERVICE_URLS.mysql });
      await c.query(`DROP USER IF EXISTS '${dbUser}'@'%'`);
      await c.query(`DROP USER IF EXISTS '${dbUser}'@'localhost'`);
      await c.end();
    });
    const dbUrl = new URL(db.url);
    dbUrl.username = dbUser;
    dbUrl.password = dbPassword;

    const secrets = {
      dbPassword,
      signing: secret('SignSecret-0123456789-'),
      audit: secret('AuditKey-0123456789-'),
      slack: secret('SlackSecret-'),
      openai: secret('sk-OpenAiKey-'),
      mattermost: secret('MmToken-'),
      wrongPassword: secret('WrongPw-'),
    };
    const dataDir = mkdtempSync(path.join(tmpdir(), 'vsec-logs-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const proc = start(['serve'], {
      DATA_DIR: dataDir,
      PORT: String(port),
      LOG_LEVEL: 'trace',
      DATABASE_URL: dbUrl.toString(),
      SIGNING_SECRET: secrets.signing,
      AUDIT_KEY: secrets.audit,
      SLACK_SIGNING_SECRET: secrets.slack,
      MATTERMOST_COMMAND_TOKEN: secrets.mattermost,
      OPENAI_API_KEY: secrets.openai,
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      EMBEDDED_GPU_RUNNER: 'false',
      SIMULATED_DEVICES: '0',
      DEMO_DATASET: 'false',
    });
    cleanups.push(() => void proc.child.kill('SIGKILL'));

    const credentials = await waitFor('the first-start admin credentials', () => {
      const email = /e-mail:\s+(\S+)/.exec(proc.out())?.[1];
      const password = /password:\s+(\S+)/.exec(proc.out())?.[1];
      return email && password ? { email, password } : undefined;
    });

    const wrong = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: credentials.email, password: secrets.wrongPassword }),
    });
    expect(wrong.status).toBe(401);
    const login = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    });
    expect(login.status).toBe(200);
    const cookies = login.headers.getSetCookie().map((c) => c.split(';')[0]!);
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const session = {
      cookie: cookies.join('; '),
      'x-csrf-token': csrfToken,
      'content-type': 'application/json',
    };
    const created = await fetch(`${base}/api/tokens`, {
      method: 'POST',
      headers: session,
      body: JSON.stringify({ name: 'ci', role: 'operator' }),
    });
    expect(created.status).toBe(201);
    const { token } = (await created.json()) as { token: string };
    const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    expect((await fetch(`${base}/api/me`, { headers: bearer })).status).toBe(200);
    // a chat message makes the LLM planner call the (unreachable) endpoint with the API key
    await fetch(`${base}/api/conversations`, {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ message: 'list datasets' }),
      signal: AbortSignal.timeout(3000),
    }).catch(() => undefined);
    // a forged bearer and a Slack request with a bad signature are logged as refusals
    await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}x` } });
    await fetch(`${base}/integrations/slack/commands`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-signature': `v0=${secrets.slack}`,
        'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)),
      },
      body: `token=${secrets.mattermost}&text=hello`,
    });

    proc.child.kill('SIGTERM');
    await proc.exited;
    const lines = proc.out().split('\n');
    const adminLine = lines.filter((l) => l.includes(credentials.password));
    expect(adminLine, 'the admin password is printed exactly once, on its own line').toEqual([
      `  password: ${credentials.password}`,
    ]);
    const rest = lines.filter((l) => l !== `  password: ${credentials.password}`).join('\n');
    expect(rest.length).toBeGreaterThan(1000);
    const sessionValues = cookies.map((c) => c.split('=').slice(1).join('='));
    const leaks = Object.entries({
      ...secrets,
      adminPassword: credentials.password,
      apiToken: token,
      tokenSecret: token.split('_').pop()!,
      csrfToken,
      ...Object.fromEntries(sessionValues.map((v, i) => [`cookie${i}`, v])),
    })
      .filter(([, value]) => value.length >= 8 && rest.includes(value))
      .map(([name]) => name);
    expect(leaks).toEqual([]);
  }, 120_000);

  it('a bad secret value stops start-up without printing the value', async () => {
    const values = { SIGNING_SECRET: secret('short-'), MATTERMOST_COMMAND_TOKEN: 'short' };
    const bad = start(['serve'], { DATA_DIR: tmpdir(), SIGNING_SECRET: values.SIGNING_SECRET });
    expect(await bad.exited).toBe(2);
    expect(bad.out()).toMatch(/invalid SIGNING_SECRET/);
    expect(bad.out()).not.toContain(values.SIGNING_SECRET);
    const badToken = start(['serve'], {
      DATA_DIR: tmpdir(),
      MATTERMOST_COMMAND_TOKEN: values.MATTERMOST_COMMAND_TOKEN,
    });
    expect(await badToken.exited).toBe(2);
    expect(badToken.out()).toMatch(/invalid MATTERMOST_COMMAND_TOKEN/);
    expect(badToken.out()).not.toContain(`"${values.MATTERMOST_COMMAND_TOKEN}"`);
    const badUrl = start(['serve'], {
      DATA_DIR: tmpdir(),
      DATABASE_URL: 'postgres://u:PgSecretValue123@h/db',
    });
    expect(await badUrl.exited).toBe(2);
    expect(badUrl.out()).toMatch(/invalid DATABASE_URL/);
    expect(badUrl.out()).not.toContain('PgSecretValue123');
  }, 60_000);
});
