import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { connect } from 'rabbitmq-stream-js-client';
import { STREAMS } from '../../services/infra/broker/index.js';
import { SERVICE_URLS } from '../services.fixtures.js';

/** Crash-recovery test support: real `visioninapp` processes, killed with SIGKILL, and the REST API they serve. */

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');

export { freePort } from '../services.fixtures.js';

/** Thrown by a probe when waiting longer cannot help (e.g. the conversation already ended otherwise). */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns something other than undefined; on timeout fails naming `what` and
 * the last state `probe` saw (what it returned through `seen`, or its last error).
 */
export async function eventually<T>(
  what: string,
  probe: (seen: (state: unknown) => void) => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'nothing yet';
  const seen = (state: unknown) => (last = state);
  for (;;) {
    try {
      const v = await probe(seen);
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof GiveUp)
        throw new Error(`gave up waiting for ${what}: ${err.message}`.slice(0, 3000));
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last state: ${typeof last === 'string' ? last : JSON.stringify(last)}`.slice(
          0,
          3000,
        ),
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One `visioninapp <command>` child process with its combined output. */
export interface CliProcess {
  child: ChildProcess;
  label: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** SIGKILLs it and resolves once it is gone. */
  kill(): Promise<void>;
}

/** Starts and tracks `visioninapp` processes so a failing test never leaves one running. */
export class Processes {
  private readonly all: CliProcess[] = [];

  start(label: string, args: string[], env: Record<string, string>): CliProcess {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const proc: CliProcess = {
      child,
      label,
      output: () => out,
      kill: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
    };
    this.all.push(proc);
    return proc;
  }

  /** SIGKILLs every process still running. */
  async killAll(): Promise<void> {
    await Promise.all(this.all.map((p) => p.kill()));
  }
}

/** A logged-in client of the REST API of a `serve` process. */
export class Api {
  private headers: Record<string, string> = {};
  constructor(readonly base: string) {}

  /** Logs in (retrying until the server answers) with the admin credentials `serve` printed on first start. */
  async login(creds: { email: string; password: string }, timeoutMs = 60_000): Promise<this> {
    const res = await eventually(
      `login at ${this.base}`,
      async (seen) => {
        const r = await fetch(`${this.base}/api/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(creds),
        });
        seen(`HTTP ${r.status}`);
        return r.status === 200 ? r : undefined;
      },
      timeoutMs,
    );
    const { csrfToken } = (await res.json()) as { csrfToken: string };
    this.headers = {
      cookie: res.headers
        .getSetCookie()
        .map((c) => c.split(';')[0]!)
        .join('; '),
      'x-csrf-token': csrfToken,
      'content-type': 'application/json',
    };
    return this;
  }

  /** The session cookie (for socket.io clients). */
  get cookie(): string {
    return this.headers.cookie ?? '';
  }

  async get<T>(route: string): Promise<T> {
    const res = await fetch(`${this.base}${route}`, { headers: this.headers });
    if (!res.ok) throw new Error(`GET ${route}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return (await res.json()) as T;
  }

  async post<T>(route: string, body: unknown, expectStatus = [200, 201]): Promise<T> {
    const res = await fetch(`${this.base}${route}`, {
      method: 'POST',
      headers: this.headers,
      body: JSON.stringify(body),
    });
    if (!expectStatus.includes(res.status))
      throw new Error(`POST ${route}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return (await res.json()) as T;
  }
}

/** The admin credentials a first `serve` prints once. */
export function adminCredentials(serve: CliProcess): Promise<{ email: string; password: string }> {
  return eventually(
    `${serve.label} to print the first admin credentials`,
    (seen) => {
      const out = serve.output();
      seen(out.slice(-1500));
      const email = /e-mail:\s+(\S+)/.exec(out)?.[1];
      const password = /password:\s+(\S+)/.exec(out)?.[1];
      return email && password ? { email, password } : undefined;
    },
    60_000,
  );
}

/** A conversation as the REST API returns it. */
export interface Thread {
  id: string;
  status: string;
  pendingApproval: { approvalId: string; tool: string } | null;
  waitingFor: { kind: string; id: string } | null;
  steps: Array<{ tool: string; state?: string }>;
  report: string | null;
}

/** Sends a request, approves (or edits and approves) its one pending step, and returns the thread after the decision. */
export async function requestAndApprove(
  api: Api,
  message: string,
  args?: Record<string, unknown>,
): Promise<Thread> {
  const started = await api.post<Thread>('/api/conversations', { message });
  if (started.pendingApproval === null)
    throw new Error(`"${message}" did not ask for an approval: ${JSON.stringify(started).slice(0, 800)}`);
  return api.post<Thread>(`/api/conversations/${started.id}/decide`, {
    approvalId: started.pendingApproval.approvalId,
    decision: args === undefined ? 'approve' : 'edit',
    ...(args === undefined ? {} : { args }),
  });
}

/** Waits until a conversation reaches `status` (default done), failing with the last state seen. */
export function waitThread(api: Api, id: string, status = 'done', timeoutMs = 90_000): Promise<Thread> {
  return eventually(
    `conversation ${id} to be ${status}`,
    async (seen) => {
      const t = await api.get<Thread>(`/api/conversations/${id}`);
      const state = {
        status: t.status,
        waitingFor: t.waitingFor,
        steps: t.steps.map((s) => `${s.tool}:${s.state ?? ''}`),
        report: t.report,
      };
      seen(state);
      if (t.status !== status && ['done', 'failed', 'clarify', 'stopped'].includes(t.status))
        throw new GiveUp(`it ended ${t.status}: ${JSON.stringify(state)}`);
      return t.status === status ? t : undefined;
    },
    timeoutMs,
  );
}

/** Deletes the streams of one test run (prefix) from the real RabbitMQ. */
export async function deleteStreams(prefix: string): Promise<void> {
  const u = new URL(SERVICE_URLS.rabbitmq);
  const raw = await connect({
    hostname: u.hostname,
    port: Number(u.port || 5552),
    username: decodeURIComponent(u.username || 'guest'),
    password: decodeURIComponent(u.password || 'guest'),
    vhost: decodeURIComponent(u.pathname.slice(1)) || '/',
  });
  for (const s of Object.values(STREAMS))
    await raw.deleteStream({ stream: `${prefix}${s}` }).catch(() => undefined);
  await raw.close();
}

/**
 * A kill point varied on purpose: a random delay in [0, maxMs), or the one pinned by the environment
 * variable `envVar` (printed with every choice, so a failing run can be reproduced).
 */
export function killDelay(what: string, envVar: string, maxMs: number): number {
  const pinned = process.env[envVar];
  const ms = pinned !== undefined && pinned !== '' ? Number(pinned) : Math.floor(Math.random() * maxMs);
  if (!Number.isFinite(ms) || ms < 0)
    throw new Error(`${envVar}=${pinned}: expected a delay in milliseconds`);
  console.info(
    `[crash scenario] ${what}: killing ${ms} ms into a ${maxMs} ms window (${envVar}=${ms} reproduces this kill)`,
  );
  return ms;
}

/** Waits `ms`, or less when `stop` (polled every 100 ms) holds first; resolves with whether it cut the wait short. */
export async function sleepUnless(ms: number, stop: () => Promise<boolean> | boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await Promise.resolve(stop()).catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, end - Date.now()))));
  }
  return false;
}
