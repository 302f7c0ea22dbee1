import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { expect } from 'vitest';
import { eventually, freePort, type Thread } from './processes.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');
const IMAGES = 40;
const MAX_KILL_DELAY_MS = 2_500;

/**
 * (a) serve killed with SIGKILL while an approval is pending, then (b) right after the approval was
 * decided: the conversation and the approval survive, the restarted agent picks the decision up by
 * itself, and the approved step runs exactly once. `env` picks the database (SQLite in DATA_DIR by default).
 */
export async function approvalCrashScenario(
  env: Record<string, string>,
  cleanups: Array<() => void>,
): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vrel-crash-'));
  // under DATA_DIR/imports: the default import root, the only server folder an import may read
  const folder = path.join(dataDir, 'imports', 'crash-ds');
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  mkdirSync(path.join(folder, 'images'), { recursive: true });
  mkdirSync(path.join(folder, 'labels'));
  writeFileSync(path.join(folder, 'data.yaml'), 'nc: 1\nnames: [helmet]\n');
  // enough distinct images that the import takes a while, so the kill lands inside the tool as often as around it
  for (let i = 0; i < IMAGES; i++) {
    const background = { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 };
    writeFileSync(
      path.join(folder, 'images', `img${i}.jpg`),
      await sharp({ create: { width: 320, height: 240, channels: 3, background } })
        .jpeg()
        .toBuffer(),
    );
    writeFileSync(path.join(folder, 'labels', `img${i}.txt`), `0 0.5 0.5 0.3 0.3\n`);
  }
  // the kill point is varied on purpose (CRASH_KILL_DELAY_MS pins it to reproduce a failure)
  const killDelayMs =
    process.env.CRASH_KILL_DELAY_MS !== undefined
      ? Number(process.env.CRASH_KILL_DELAY_MS)
      : Math.floor(Math.random() * MAX_KILL_DELAY_MS);
  console.info(
    `[crash scenario] killing serve ${killDelayMs} ms after the approval (CRASH_KILL_DELAY_MS=${killDelayMs} reproduces this run)`,
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let out = '';
  const serve = (): ChildProcess => {
    const child = spawn(process.execPath, [BIN, 'serve'], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...env,
        DATA_DIR: dataDir,
        PORT: String(port),
        LOG_LEVEL: 'warn',
        EMBEDDED_GPU_RUNNER: 'false',
        SIMULATED_DEVICES: '0',
        DEMO_DATASET: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    cleanups.push(() => void child.kill('SIGKILL'));
    return child;
  };
  const killed = (child: ChildProcess) =>
    new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.kill('SIGKILL')));

  let child = serve();
  const creds = await eventually('admin credentials', () => {
    const email = /e-mail:\s+(\S+)/.exec(out)?.[1];
    const password = /password:\s+(\S+)/.exec(out)?.[1];
    return email && password ? { email, password } : undefined;
  });
  const login = async () => {
    const res = await eventually('login', async () => {
      const r = await fetch(`${base}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(creds),
      });
      return r.status === 200 ? r : undefined;
    });
    const { csrfToken } = (await res.json()) as { csrfToken: string };
    return {
      cookie: res.headers
        .getSetCookie()
        .map((c) => c.split(';')[0]!)
        .join('; '),
      'x-csrf-token': csrfToken,
      'content-type': 'application/json',
    };
  };
  let session = await login();
  const ready = (await (await fetch(`${base}/readyz`)).json()) as {
    checks: Array<{ port: string; adapter: string }>;
  };
  expect(ready.checks.find((c) => c.port === 'db')?.adapter).toBe(env.DATABASE_URL ? 'mysql' : 'sqlite');
  const started = await fetch(`${base}/api/conversations`, {
    method: 'POST',
    headers: session,
    body: JSON.stringify({ message: `import ${folder} as crash-a` }),
  });
  expect(started.status).toBe(201);
  const before = (await started.json()) as Thread;
  expect(before.status).toBe('awaiting_approval');
  expect(before.pendingApproval?.tool).toBe('import_dataset');
  const approvalId = before.pendingApproval!.approvalId;

  // (a) killed while the approval is pending
  await killed(child);
  child = serve();
  session = await login();
  const after = (await (
    await fetch(`${base}/api/conversations/${before.id}`, { headers: session })
  ).json()) as Thread;
  expect(after.status).toBe('awaiting_approval');
  expect(after.pendingApproval?.approvalId).toBe(approvalId);
  const approval = (await (
    await fetch(`${base}/api/approvals/${approvalId}`, { headers: session })
  ).json()) as { status: string };
  expect(approval.status).toBe('pending');

  // (b) killed right after the approval was decided, before or while the step runs
  // the status, or 0 when the kill cut the request off (handled at once, so that is no unhandled rejection)
  const decided = fetch(`${base}/api/approvals/${approvalId}/decide`, {
    method: 'POST',
    headers: session,
    body: JSON.stringify({ decision: 'approve' }),
  }).then(
    (r) => r.status,
    () => 0,
  );
  await new Promise((r) => setTimeout(r, killDelayMs));
  await killed(child);
  // the decision is either recorded or not; when the kill came before it landed, approve again after the restart
  const decision = await decided;
  child = serve();
  session = await login();
  if (decision !== 200) {
    const state = (await (
      await fetch(`${base}/api/approvals/${approvalId}`, { headers: session })
    ).json()) as { status: string };
    if (state.status === 'pending') {
      const again = await fetch(`${base}/api/approvals/${approvalId}/decide`, {
        method: 'POST',
        headers: session,
        body: JSON.stringify({ decision: 'approve' }),
      });
      expect(again.status).toBe(200);
    }
  }
  let last: unknown;
  const done = await eventually(
    'the approved step to finish after the restart',
    async () => {
      const t = (await (
        await fetch(`${base}/api/conversations/${before.id}`, { headers: session })
      ).json()) as Thread;
      last = t;
      if (t.status === 'done') return t;
      return undefined;
    },
    60_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last state ${JSON.stringify(last).slice(0, 1500)}`);
  });
  expect(done.status).toBe('done');
  const dataset = (await (await fetch(`${base}/api/datasets/crash-a`, { headers: session })).json()) as {
    latestVersion: number;
    version: number;
  };
  // exactly once: one version with every image, one start on the audit log, one recorded execution
  expect(dataset).toMatchObject({ version: 1, latestVersion: 1 });
  expect((dataset as unknown as { stats: { images: number } }).stats.images).toBe(IMAGES);
  const audit = (await (
    await fetch(`${base}/api/audit?tool=import_dataset&action=tool.started`, { headers: session })
  ).json()) as { total: number };
  expect(audit.total).toBe(1);
  await killed(child);
}
