import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch, writeSquaresDataset } from '../../gpu-runner/runner.fixtures.js';
import {
  createBroker,
  STREAMS,
  type Broker,
  type Envelope,
  type MessagePayload,
} from '../../services/infra/broker/index.js';
import { silentLogger } from '../../core/log.js';
import {
  createTempMysqlDatabase,
  SERVICE_URLS,
  skipWithoutService,
  uniqueSuffix,
} from '../services.fixtures.js';
import {
  adminCredentials,
  Api,
  deleteStreams,
  eventually,
  freePort,
  killDelay,
  Processes,
  requestAndApprove,
  waitThread,
  type CliProcess,
  type Thread,
} from './processes.js';
import type { CrashDatabase } from './crash-training-scenario.js';

// Crash recovery of the fleet, with real processes on the real broker (TEST_RABBITMQ_STREAM_URL):
// `visioninapp serve` (SQLite in DATA_DIR, or a temporary MariaDB database), two `visioninapp edge-runner`
// devices, and a gpu-runner that trains the two model versions. Each kill lands at a random delay inside
// its window (printed with the variable that pins it), not at one detected moment.

const TAG = 'line-9';
const DEVICES = ['crash-cam-a', 'crash-cam-b'];
const TRAIN_ARGS = { backend: 'builtin', model: 'builtin-t', epochs: 1, imgsz: 64, batch: 8 };
/** (f): from the canary's deploy.apply on the stream (receive, download, verify, load, switch, report). */
const DEVICE_WINDOW_MS = 4_000;

interface Device {
  id: string;
  modelVersionId: string | null;
  previousModelVersionId: string | null;
  state: string;
  lastHeartbeatAt: number;
  health: { online: boolean };
}
interface Rollout {
  id: string;
  state: string;
  reason: string | null;
  devices: Array<{
    deviceId: string;
    wave: number;
    state: string;
    deviceState: string | null;
    verifiedAt: number | null;
  }>;
}

/** The fleet crash scenarios (f) and (d) with the platform on `database`. */
export async function fleetCrashSuite(database: CrashDatabase): Promise<void> {
  const skip =
    (await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL')) ||
    (database === 'mysql' && (await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL')));
  const torchMissing = await skipWithoutTorch();

  describe.skipIf(skip || torchMissing)(
    `crash recovery of the fleet (real serve and edge-runner processes, RabbitMQ streams, ${database})`,
    () => {
      const procs = new Processes();
      const dirs: string[] = [];
      const prefix = `crash-fleet-${uniqueSuffix()}-`;
      const control: Envelope[] = [];
      const devices = new Map<string, { proc: CliProcess; start: () => CliProcess; httpUrl: string }>();
      let observer: Broker | undefined;
      let drop: (() => Promise<void>) | undefined;
      let serveEnv: Record<string, string>;
      let serve: CliProcess;
      let creds: { email: string; password: string };
      let api: Api;
      const versions: string[] = [];
      /** How long a whole rollout of this fleet took here, measured in (f): the window of the platform kill in (d). */
      let rolloutMs = 40_000;

      const tmp = (p: string) => {
        const d = mkdtempSync(path.join(tmpdir(), p));
        dirs.push(d);
        return d;
      };

      beforeAll(async () => {
        const datasetDir = tmp('vrel-squares-');
        await writeSquaresDataset(datasetDir, { counts: { train: 16, val: 4, test: 4 }, size: 64 });
        const port = await freePort();
        const dataDir = tmp('vrel-fleet-');
        const db = database === 'mysql' ? await createTempMysqlDatabase() : undefined;
        drop = db?.drop;
        serveEnv = {
          DATA_DIR: dataDir,
          ...(db ? { DATABASE_URL: db.url } : {}),
          // the chat imports datasetDir: it must be an import root
          IMPORT_ROOTS: datasetDir,
          PORT: String(port),
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          LOG_LEVEL: 'info',
          EMBEDDED_GPU_RUNNER: 'false',
          SIMULATED_DEVICES: '0',
          DEMO_DATASET: 'false',
          RABBITMQ_STREAM_URL: SERVICE_URLS.rabbitmq,
          RABBITMQ_STREAM_PREFIX: prefix,
          DEVICE_ONLINE_WINDOW_S: '6',
          ROLLOUT_HEALTH_TIMEOUT_S: '90',
          ROLLOUT_MIN_HEARTBEATS: '3',
          ROLLOUT_OBSERVE_S: '20',
          ROLLOUT_CONFIDENCE_MARGIN: 'off',
        };
        observer = await createBroker({
          rabbitmqUrl: SERVICE_URLS.rabbitmq,
          streamPrefix: prefix,
          log: silentLogger(),
        });
        await observer.subscribe(STREAMS.control, { from: 'first' }, (e) => void control.push(e));
        serve = procs.start('serve', ['serve'], serveEnv);
        creds = await adminCredentials(serve);
        api = await new Api(`http://127.0.0.1:${port}`).login(creds);
        const ready = await api.get<{ checks: Array<{ port: string; adapter: string }> }>('/readyz');
        expect(ready.checks.find((c) => c.port === 'db')?.adapter).toBe(database);
        const runner = procs.start(
          'gpu-runner',
          [
            'gpu-runner',
            '--id',
            'gpu-fleet',
            '--backends',
            'builtin',
            '--work-dir',
            path.join(dataDir, 'gpu-runner'),
          ],
          serveEnv,
        );
        await waitThread(api, (await requestAndApprove(api, `import ${datasetDir} as crash-fleet`)).id);
        for (let v = 1; v <= 2; v++) {
          // training is deterministic: a different batch size gives the second version different weights (another file to download)
          const t = await requestAndApprove(api, 'train a detector on dataset crash-fleet for 1 epochs', {
            dataset: 'crash-fleet',
            name: 'crash-fleet',
            ...TRAIN_ARGS,
            batch: 4 * v,
          });
          const done = await waitThread(api, t.id, 'done', 90_000);
          expect(done.report).toMatch(/succeeded/);
        }
        const listed = await api.get<{ versions: Array<{ id: string; version: number }> }>(
          '/api/models?name=crash-fleet',
        );
        versions.push(...listed.versions.sort((a, b) => a.version - b.version).map((v) => v.id));
        expect(versions).toHaveLength(2);
        await runner.kill();

        for (const id of DEVICES) {
          const httpPort = await freePort();
          const dataDirDevice = tmp(`vrel-${id}-`);
          const start = () =>
            procs.start(
              `edge-runner ${id}`,
              [
                'edge-runner',
                '--device-id',
                id,
                '--tags',
                TAG,
                '--broker-url',
                SERVICE_URLS.rabbitmq,
                '--stream-prefix',
                prefix,
                '--source',
                `folder:${path.join(datasetDir, 'images', 'test')}`,
                '--fps',
                '2',
                '--data-dir',
                dataDirDevice,
                '--http-port',
                String(httpPort),
                '--http-host',
                '127.0.0.1',
                '--heartbeat-seconds',
                '1',
                '--feedback-per-minute',
                '0',
                '--threads',
                '1',
              ],
              { LOG_LEVEL: 'info' },
            );
          devices.set(id, { proc: start(), start, httpUrl: `http://127.0.0.1:${httpPort}` });
        }
        await eventually(
          `devices ${DEVICES.join(', ')} online`,
          async (seen) => {
            const list = (await api.get<{ devices: Device[] }>(`/api/devices?tag=${TAG}`)).devices;
            seen(list.map((d) => ({ id: d.id, online: d.health.online })));
            return DEVICES.every((id) => list.some((d) => d.id === id && d.health.online)) ? true : undefined;
          },
          60_000,
        );
      }, 240_000);

      afterAll(async () => {
        await procs.killAll();
        await observer?.close();
        await deleteStreams(prefix).catch(() => undefined);
        await drop?.().catch(() => undefined);
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      }, 60_000);

      const applies = (rolloutId: string) =>
        control
          .filter((e) => e.type === 'deploy.apply')
          .map((e) => e.payload as MessagePayload<'deploy.apply'>)
          .filter((p) => p.rolloutId === rolloutId)
          .map((p) => p.deviceId)
          .sort();

      async function deploy(version: number): Promise<{ threadId: string; rolloutId: string }> {
        const t = await requestAndApprove(api, `deploy crash-fleet@${version} to line 9`);
        expect(t.waitingFor?.kind, JSON.stringify(t).slice(0, 800)).toBe('rollout');
        return { threadId: t.id, rolloutId: t.waitingFor!.id };
      }

      const infer = async (id: string) => {
        const res = await fetch(`${devices.get(id)!.httpUrl}/healthz`);
        return {
          status: res.status,
          body: (await res.json()) as { modelVersionId: string | null; lastError?: string },
        };
      };

      const servingAgain = (id: string, what: string) =>
        eventually(
          `${id} serving again ${what}`,
          async (seen) => {
            const h = await infer(id);
            seen(h);
            return h.status === 200 ? h : undefined;
          },
          60_000,
        );

      it('(f) an edge runner killed at a random point of a model switch comes back on a model it was given, says so, and the switch completes once', async () => {
        const [v1, v2] = versions as [string, string];
        const rolloutStart = Date.now();
        const first = await deploy(1);
        const done1 = await waitThread(api, first.threadId, 'done', 90_000);
        expect(done1.report).toMatch(/completed/);
        rolloutMs = Date.now() - rolloutStart;

        const second = await deploy(2);
        // the canary was sent the new model: kill it somewhere between receiving it and reporting the switch
        const canary = await eventually(
          "the canary's deploy.apply on the stream",
          (seen) => {
            const sent = applies(second.rolloutId);
            seen(sent);
            return sent[0];
          },
          60_000,
          20,
        );
        await new Promise((r) =>
          setTimeout(
            r,
            killDelay(
              `(f) edge-runner ${canary}, after its deploy.apply`,
              'CRASH_FLEET_DEVICE_KILL_MS',
              DEVICE_WINDOW_MS,
            ),
          ),
        );
        const device = devices.get(canary)!;
        await device.proc.kill();
        device.proc = device.start();

        // back on a working model it was given (the previous one, or the new one if the switch had completed), serving and reporting it
        const back = await servingAgain(canary, 'after the restart');
        expect([v1, v2]).toContain(back.body.modelVersionId);
        console.info(
          `[crash scenario] (f) ${canary} came back on ${back.body.modelVersionId === v1 ? 'the previous model' : 'the new model'}`,
        );
        const restartedAt = Date.now();
        const reported = await eventually(
          `${canary} to report its model after the restart`,
          async (seen) => {
            const d = await api.get<Device>(`/api/devices/${canary}`);
            seen(d);
            return d.lastHeartbeatAt > restartedAt ? d : undefined;
          },
          30_000,
        );
        expect([v1, v2]).toContain(reported.modelVersionId);

        const done2 = await waitThread(api, second.threadId, 'done', 120_000);
        expect(done2.report).toMatch(/completed/);
        // the switch completed once: one deploy.apply per device, every device on the new model
        expect(applies(second.rolloutId)).toEqual([...DEVICES].sort());
        const final = await api.get<Rollout>(`/api/rollouts/${second.rolloutId}`);
        expect(final.state).toBe('completed');
        for (const id of DEVICES) {
          expect((await infer(id)).body.modelVersionId).toBe(v2);
          expect((await api.get<Device>(`/api/devices/${id}`)).modelVersionId).toBe(v2);
        }

        // killed after a verified switch, it comes back on the new model
        await device.proc.kill();
        device.proc = device.start();
        const after = await servingAgain(canary, 'after a kill following the switch');
        expect(after.body).toMatchObject({ modelVersionId: v2 });
        expect(after.body.lastError).toBeUndefined();
      }, 240_000);

      it('(d) the platform killed at a random point between the approval and the end of a rollout: after the restart the rollout completes once, no device switched twice', async () => {
        const [v1] = versions as [string, string];
        const before = (await api.get<{ rollouts: Rollout[] }>('/api/rollouts')).rollouts.map((r) => r.id);
        const startedAudit = (
          await api.get<{ total: number }>('/api/audit?tool=start_rollout&action=tool.started')
        ).total;
        const started = await api.post<Thread>('/api/conversations', {
          message: 'deploy crash-fleet@1 to line 9',
        });
        expect(started.pendingApproval?.tool).toBe('start_rollout');
        const decision = { approvalId: started.pendingApproval!.approvalId, decision: 'approve' };

        // killed anywhere from inside start_rollout to the last wave's verification
        const delay = killDelay(
          '(d) serve, after start_rollout was approved',
          'CRASH_FLEET_SERVE_KILL_MS',
          rolloutMs,
        );
        const decided = api.post<Thread>(`/api/conversations/${started.id}/decide`, decision).then(
          () => true,
          () => false,
        );
        await new Promise((r) => setTimeout(r, delay));
        await serve.kill();
        const landed = await decided;
        const atKill = control.filter((e) => e.type === 'deploy.apply').length;
        console.info(
          `[crash scenario] (d) decision answered before the kill: ${landed}; deploy.apply messages on the stream so far: ${atKill}`,
        );

        serve = procs.start('serve (restarted)', ['serve'], serveEnv);
        await api.login(creds);
        if (!landed) {
          const approval = await api.get<{ status: string }>(`/api/approvals/${decision.approvalId}`);
          if (approval.status === 'pending')
            await api.post<Thread>(`/api/conversations/${started.id}/decide`, decision);
        }
        const done = await waitThread(api, started.id, 'done', 150_000);
        expect(done.report).toMatch(/completed/);
        // exactly once: one new rollout for the one approved step, started once on the audit log
        const created = (await api.get<{ rollouts: Rollout[] }>('/api/rollouts')).rollouts.filter(
          (r) => !before.includes(r.id),
        );
        expect(created.map((r) => r.id)).toHaveLength(1);
        expect(
          (await api.get<{ total: number }>('/api/audit?tool=start_rollout&action=tool.started')).total,
        ).toBe(startedAudit + 1);
        const final = await api.get<Rollout>(`/api/rollouts/${created[0]!.id}`);
        expect(final.state).toBe('completed');
        expect(final.devices.every((d) => d.state === 'healthy')).toBe(true);
        // one deploy.apply per device: no device was sent the model again after the restart
        expect(applies(final.id)).toEqual([...DEVICES].sort());
        for (const id of DEVICES) expect((await infer(id)).body.modelVersionId).toBe(v1);
      }, 240_000);
    },
  );
}
