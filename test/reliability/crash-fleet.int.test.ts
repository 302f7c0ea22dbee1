import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch, writeSquaresDataset } from '../../gpu-runner/test-fixtures.js';
import { createBroker, STREAMS, type Broker, type Envelope, type MessagePayload } from '../../services/infra/broker/index.js';
import { silentLogger } from '../../services/log.js';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../support/services.js';
import { adminCredentials, Api, deleteStreams, eventually, freePort, Processes, requestAndApprove, waitThread, type CliProcess } from './processes.js';

// Crash recovery of the fleet, with real processes on the real broker (TEST_RABBITMQ_STREAM_URL):
// `visioninapp serve` (SQLite in DATA_DIR), two `visioninapp edge-runner` devices, and a gpu-runner that
// trains the two model versions. Devices download models through a proxy in front of the platform that
// can hold model downloads, so a kill lands in the middle of a model switch.
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');
const torchMissing = await skipWithoutTorch();

const TAG = 'line-9';
const DEVICES = ['crash-cam-a', 'crash-cam-b'];
const TRAIN_ARGS = { backend: 'builtin', model: 'builtin-t', epochs: 1, imgsz: 64, batch: 8 };

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
  devices: Array<{ deviceId: string; wave: number; state: string; deviceState: string | null; verifiedAt: number | null }>;
}

/** Forwards everything to the platform; while `holding`, model downloads wait until released. */
class HoldingProxy {
  holding = false;
  private readonly held: Array<() => void> = [];
  private server: http.Server | undefined;
  target = 0;

  /** Model downloads waiting now. */
  get waiting(): number {
    return this.held.length;
  }

  async start(): Promise<number> {
    this.server = http.createServer((req, res) => {
      const forward = () => {
        const up = http.request({ host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', () => {
          res.statusCode = 502;
          res.end('platform unreachable');
        });
        req.pipe(up);
      };
      if (this.holding && req.method === 'GET' && (req.url ?? '').includes('model.onnx')) this.held.push(forward);
      else forward();
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return (this.server.address() as { port: number }).port;
  }

  /** Stops holding and lets every waiting download through. */
  release(): void {
    this.holding = false;
    for (const go of this.held.splice(0)) go();
  }

  async close(): Promise<void> {
    this.release();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

describe.skipIf(skip || torchMissing)('crash recovery of the fleet (real serve and edge-runner processes, RabbitMQ streams)', () => {
  const procs = new Processes();
  const dirs: string[] = [];
  const prefix = `crash-fleet-${uniqueSuffix()}-`;
  const proxy = new HoldingProxy();
  const control: Envelope[] = [];
  const devices = new Map<string, { proc: CliProcess; start: () => CliProcess; httpUrl: string }>();
  let observer: Broker;
  let serveEnv: Record<string, string>;
  let serve: CliProcess;
  let creds: { email: string; password: string };
  let api: Api;
  const versions: string[] = [];

  const tmp = (p: string) => {
    const d = mkdtempSync(path.join(tmpdir(), p));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    const datasetDir = tmp('vrel-squares-');
    await writeSquaresDataset(datasetDir, { counts: { train: 16, val: 4, test: 4 }, size: 64 });
    const port = await freePort();
    proxy.target = port;
    const proxyPort = await proxy.start();
    const dataDir = tmp('vrel-fleet-');
    serveEnv = {
      DATA_DIR: dataDir,
      // the chat imports datasetDir: it must be an import root
      IMPORT_ROOTS: datasetDir,
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${proxyPort}`,
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
    observer = await createBroker({ rabbitmqUrl: SERVICE_URLS.rabbitmq, streamPrefix: prefix, log: silentLogger() });
    await observer.subscribe(STREAMS.control, { from: 'first' }, (e) => void control.push(e));
    serve = procs.start('serve', ['serve'], serveEnv);
    creds = await adminCredentials(serve);
    api = await new Api(`http://127.0.0.1:${port}`).login(creds);
    const runner = procs.start('gpu-runner', ['gpu-runner', '--id', 'gpu-fleet', '--backends', 'builtin', '--work-dir', path.join(dataDir, 'gpu-runner')], serveEnv);
    await waitThread(api, (await requestAndApprove(api, `import ${datasetDir} as crash-fleet`)).id);
    for (let v = 1; v <= 2; v++) {
      // training is deterministic: a different batch size gives the second version different weights (another file to download)
      const t = await requestAndApprove(api, 'train a detector on dataset crash-fleet for 1 epochs', { dataset: 'crash-fleet', name: 'crash-fleet', ...TRAIN_ARGS, batch: 4 * v });
      const done = await waitThread(api, t.id, 'done', 90_000);
      expect(done.report).toMatch(/succeeded/);
    }
    const listed = await api.get<{ versions: Array<{ id: string; version: number }> }>('/api/models?name=crash-fleet');
    versions.push(...listed.versions.sort((a, b) => a.version - b.version).map((v) => v.id));
    expect(versions).toHaveLength(2);
    await runner.kill();

    for (const id of DEVICES) {
      const httpPort = await freePort();
      const dataDirDevice = tmp(`vrel-${id}-`);
      const start = () =>
        procs.start(`edge-runner ${id}`, ['edge-runner', '--device-id', id, '--tags', TAG, '--broker-url', SERVICE_URLS.rabbitmq, '--stream-prefix', prefix, '--source', `folder:${path.join(datasetDir, 'images', 'test')}`, '--fps', '2', '--data-dir', dataDirDevice, '--http-port', String(httpPort), '--http-host', '127.0.0.1', '--heartbeat-seconds', '1', '--feedback-per-minute', '0', '--threads', '1'], { LOG_LEVEL: 'info' });
      devices.set(id, { proc: start(), start, httpUrl: `http://127.0.0.1:${httpPort}` });
    }
    await eventually(`devices ${DEVICES.join(', ')} online`, async (seen) => {
      const list = (await api.get<{ devices: Device[] }>(`/api/devices?tag=${TAG}`)).devices;
      seen(list.map((d) => ({ id: d.id, online: d.health.online })));
      return DEVICES.every((id) => list.some((d) => d.id === id && d.health.online)) ? true : undefined;
    }, 60_000);
  }, 240_000);

  afterAll(async () => {
    await procs.killAll();
    await proxy.close();
    await observer?.close();
    await deleteStreams(prefix).catch(() => undefined);
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

  function waitRollout(what: string, rolloutId: string, ok: (r: Rollout) => boolean, timeoutMs = 90_000): Promise<Rollout> {
    return eventually(`rollout ${rolloutId}: ${what}`, async (seen) => {
      const r = await api.get<Rollout>(`/api/rollouts/${rolloutId}`);
      seen({ state: r.state, reason: r.reason, devices: r.devices.map((d) => `${d.deviceId} w${d.wave} ${d.state}/${d.deviceState ?? '-'}`) });
      return ok(r) ? r : undefined;
    }, timeoutMs, 100);
  }

  const infer = async (id: string) => {
    const res = await fetch(`${devices.get(id)!.httpUrl}/healthz`);
    return { status: res.status, body: (await res.json()) as { modelVersionId: string | null; lastError?: string } };
  };

  it('(f) an edge runner killed while switching models comes back on its previous model, says so, and finishes the switch', async () => {
    const [v1, v2] = versions as [string, string];
    const first = await deploy(1);
    const done1 = await waitThread(api, first.threadId, 'done', 90_000);
    expect(done1.report).toMatch(/completed/);

    proxy.holding = true;
    const second = await deploy(2);
    // the canary is downloading the new model (held by the proxy): kill it there
    const mid = await waitRollout('the canary downloading', second.rolloutId, (r) => r.devices.some((d) => d.wave === 0 && d.state === 'sent') && proxy.waiting > 0);
    const canary = mid.devices.find((d) => d.wave === 0)!.deviceId;
    const device = devices.get(canary)!;
    await device.proc.kill();
    device.proc = device.start();

    // back on the previous, working model, serving and reporting it, while the interrupted switch resumes
    const back = await eventually(`${canary} serving again after the restart`, async (seen) => {
      const h = await infer(canary);
      seen(h);
      return h.status === 200 ? h : undefined;
    }, 60_000);
    expect(back.body.modelVersionId).toBe(v1);
    const restartedAt = Date.now();
    const reported = await eventually(`${canary} to report its model after the restart`, async (seen) => {
      const d = await api.get<Device>(`/api/devices/${canary}`);
      seen(d);
      return d.lastHeartbeatAt > restartedAt ? d : undefined;
    }, 30_000);
    expect(reported.modelVersionId).toBe(v1);
    await eventually(`${canary} to ask for the new model again`, (seen) => (seen(proxy.waiting), proxy.waiting > 0 ? true : undefined), 30_000);

    proxy.release();
    const done2 = await waitThread(api, second.threadId, 'done', 90_000);
    expect(done2.report).toMatch(/completed/);
    expect(applies(second.rolloutId)).toEqual([...DEVICES].sort());
    for (const id of DEVICES) {
      expect((await infer(id)).body.modelVersionId).toBe(v2);
      expect((await api.get<Device>(`/api/devices/${id}`)).modelVersionId).toBe(v2);
    }

    // killed after a verified switch, it comes back on the new model
    await device.proc.kill();
    device.proc = device.start();
    const after = await eventually(`${canary} serving again after a kill following the switch`, async (seen) => {
      const h = await infer(canary);
      seen(h);
      return h.status === 200 ? h : undefined;
    }, 60_000);
    expect(after.body).toMatchObject({ modelVersionId: v2 });
    expect(after.body.lastError).toBeUndefined();
  }, 180_000);

  it('(d) the platform killed mid-rollout: after the restart the rollout continues from its recorded state and completes, no device switched twice', async () => {
    const [v1] = versions as [string, string];
    const { threadId, rolloutId } = await deploy(1);
    // canary switched, the next wave not sent yet: kill the platform there
    const mid = await waitRollout('the canary healthy and the next wave not yet sent', rolloutId, (r) => r.devices.some((d) => d.wave === 0 && d.state === 'healthy') && r.devices.some((d) => d.wave > 0 && d.state === 'pending'));
    await serve.kill();
    const canary = mid.devices.find((d) => d.wave === 0)!.deviceId;

    serve = procs.start('serve (restarted)', ['serve'], serveEnv);
    await api.login(creds);
    const done = await waitThread(api, threadId, 'done', 90_000);
    expect(done.report).toMatch(/completed/);
    const final = await api.get<Rollout>(`/api/rollouts/${rolloutId}`);
    expect(final.state).toBe('completed');
    expect(final.devices.every((d) => d.state === 'healthy')).toBe(true);
    // one deploy.apply per device: the canary was not sent the model again after the restart
    expect(applies(rolloutId)).toEqual([...DEVICES].sort());
    expect(final.devices.find((d) => d.deviceId === canary)!.wave).toBe(0);
    for (const id of DEVICES) expect((await infer(id)).body.modelVersionId).toBe(v1);
  }, 180_000);
});
