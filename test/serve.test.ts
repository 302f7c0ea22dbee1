import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');

function run(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      EMBEDDED_GPU_RUNNER: 'false',
      SIMULATED_DEVICES: '0',
      DEMO_DATASET: 'false',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

async function waitFor(url: string, timeoutMs = 30_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(url);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('visioninapp serve', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('serves /healthz and /readyz with every embedded adapter ready, and exits 0 on SIGTERM', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'vserve-'));
    dirs.push(dataDir);
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const child = run(['serve'], { DATA_DIR: dataDir, PORT: port });
    const done = exited(child);
    expect((await waitFor(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    let ready: { status: string; checks: Array<{ port: string; adapter: string; ok: boolean }> } = {
      status: '',
      checks: [],
    };
    for (let i = 0; i < 100 && ready.status !== 'ready'; i++) {
      ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as typeof ready;
      if (ready.status !== 'ready') await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready.status).toBe('ready');
    expect(ready.checks.map((c) => `${c.port}:${c.adapter}`)).toEqual(
      expect.arrayContaining([
        'db:sqlite',
        'cache:memory',
        'search:minisearch',
        'broker:memory',
        'storage:local',
        'auth:local',
      ]),
    );
    child.kill('SIGTERM');
    expect((await done).code).toBe(0);
  }, 60_000);

  it('stops with one line naming the variable and exit code 2 on a bad value', async () => {
    const { code, stderr } = await exited(run(['serve'], { PORT: 'not-a-port' }));
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/invalid PORT/);
  }, 30_000);

  it('reports a configured database that is down by name instead of crashing', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'vserve-'));
    dirs.push(dataDir);
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const child = run(['serve'], {
      DATA_DIR: dataDir,
      PORT: port,
      DATABASE_URL: 'mysql://root@127.0.0.1:1/nowhere',
    });
    const done = exited(child);
    await waitFor(`http://127.0.0.1:${port}/healthz`);
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { checks: Array<{ port: string; ok: boolean; detail?: string }> };
    const db = body.checks.find((c) => c.port === 'db');
    expect(db?.ok).toBe(false);
    expect(db?.detail).toMatch(/DATABASE_URL/);
    child.kill('SIGTERM');
    expect((await done).code).toBe(0);
  }, 60_000);
});
