import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureDemoDataset, startEmbeddedGpuRunner, startSimulatedDevices } from '../../bin/embedded.js';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { loadConfig } from '../../app/config.js';
import { systemPrincipal, type CallContext } from '../../core/context.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform, type Platform } from '../../app/platform.js';
import { startHttpServer, type RunningServer } from '../../app/http.js';
import { ARTIFACTS } from './chromium.js';
import { freePort } from '../services.fixtures.js';

/** Password of the embedded platform's test users. */
export const EMBEDDED_PASSWORD = 'correct horse battery';
/** The simulated line-3 devices `npm start` runs. */
export const LINE3 = ['jetson-line3-01', 'jetson-line3-02', 'jetson-line3-03'];

/** Waits until `fn` answers something other than undefined or false. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The real embedded platform of `npm start`, served over HTTP, with an operator and an approver. */
export interface EmbeddedPlatform {
  platform: Platform;
  http: RunningServer;
  url: string;
  users: Record<'operator' | 'approver', { id: string; email: string }>;
  /** The platform acting as itself (checks in tests). */
  ctx: CallContext;
  close(): Promise<void>;
}

/**
 * createPlatform with its embedded adapters, the embedded GPU runner training the built-in PyTorch
 * detector and three simulated line-3 Jetsons running the edge-runner code (bin/embedded.ts, as
 * `npm start` does). Only sizes and timings are shortened, through documented configuration
 * (DEMO_PROFILE=tiny, short rollout gates and heartbeats).
 */
export async function startEmbeddedPlatform(): Promise<EmbeddedPlatform> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'vjourney-'));
  const port = await freePort();
  const config = loadConfig(
    {
      DATA_DIR: dir,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      DEMO_PROFILE: 'tiny',
      SIMULATED_DEVICES: '3',
      SIMULATED_DEVICE_HEARTBEAT_S: '1',
      DEVICE_ONLINE_WINDOW_S: '10',
      ROLLOUT_MIN_HEARTBEATS: '2',
      ROLLOUT_OBSERVE_S: '10',
      ROLLOUT_HEALTH_TIMEOUT_S: '60',
    },
    dir,
  );
  const platform = await createPlatform(config, silentLogger());
  const http = await startHttpServer(platform);
  await platform.start();
  const ctx = {
    user: systemPrincipal(),
    projectId: DEFAULT_PROJECT_ID,
    requestId: 'journey',
    log: platform.log,
  };
  const workers: Array<{ stop(): Promise<void> }> = [];
  workers.push(await startEmbeddedGpuRunner(platform));
  await ensureDemoDataset(platform);
  workers.push(await startSimulatedDevices(platform));
  const users = {} as EmbeddedPlatform['users'];
  for (const role of ['operator', 'approver'] as const) {
    const email = `${role}@example.test`;
    const user = await platform.accounts.createUser({
      email,
      name: role,
      password: EMBEDDED_PASSWORD,
      role,
      projectId: DEFAULT_PROJECT_ID,
    });
    users[role] = { id: user.id, email };
  }
  await until('the three line-3 devices online', async () => {
    const listed = await platform.fleet.list(ctx, { tag: 'line-3' });
    return LINE3.every((id) => listed.some((d) => d.id === id && d.health.online));
  });
  await until('the embedded GPU runner live', async () =>
    (await platform.training.runners()).some((r) => r.live && r.backends.includes('builtin')),
  );
  return {
    platform,
    http,
    url: http.url,
    users,
    ctx,
    async close() {
      for (const w of workers) await w.stop().catch(() => undefined);
      await http.close();
      await platform.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
