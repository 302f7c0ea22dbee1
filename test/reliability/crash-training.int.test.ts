import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io as connect } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch, writeSquaresDataset } from '../../gpu-runner/test-fixtures.js';
import { createBroker, STREAMS, type Broker, type Envelope, type MessagePayload } from '../../services/infra/broker/index.js';
import { silentLogger } from '../../services/log.js';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../support/services.js';
import { adminCredentials, Api, deleteStreams, eventually, freePort, Processes, requestAndApprove, waitThread, type CliProcess, type Thread } from './processes.js';

// Crash recovery around training, with real processes on the real broker (TEST_RABBITMQ_STREAM_URL):
// `visioninapp serve` (SQLite in DATA_DIR) and `visioninapp gpu-runner`, each killed with SIGKILL at a
// point detected from what the API or the stream shows.
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');
const torchMissing = await skipWithoutTorch();

const EPOCHS = 6;
/** Small enough to train in seconds on a loaded 2-core machine, long enough (~1 s an epoch) to crash in the middle. */
const TRAIN_ARGS = { backend: 'builtin', model: 'builtin-t', epochs: EPOCHS, imgsz: 128, batch: 8 };

interface Job {
  id: string;
  status: string;
  attempt: number;
  epochsDone: number;
  epochs: number;
  message: string | null;
  runnerId: string | null;
  modelVersionId: string | null;
}

describe.skipIf(skip || torchMissing)('crash recovery during training (real serve and gpu-runner processes, RabbitMQ streams)', () => {
  const procs = new Processes();
  const dirs: string[] = [];
  const prefixes: string[] = [];
  let datasetDir: string;
  let observer: Broker | undefined;

  beforeAll(async () => {
    datasetDir = tmp('vrel-squares-');
    await writeSquaresDataset(datasetDir, { counts: { train: 48, val: 8, test: 8 }, size: 128 });
  });

  afterAll(async () => {
    await procs.killAll();
    await observer?.close();
    for (const p of prefixes) await deleteStreams(p).catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  function tmp(prefix: string): string {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  }

  /** One environment: a data folder, a port, a stream prefix, and the commands to start serve and the runner in it. */
  async function environment(extra: Record<string, string>) {
    const prefix = `crash-${uniqueSuffix()}-`;
    prefixes.push(prefix);
    const dataDir = tmp('vrel-crash-');
    const port = await freePort();
    const env = {
      DATA_DIR: dataDir,
      // the chat imports datasetDir: it must be an import root
      IMPORT_ROOTS: datasetDir,
      PORT: String(port),
      LOG_LEVEL: 'info',
      EMBEDDED_GPU_RUNNER: 'false',
      SIMULATED_DEVICES: '0',
      DEMO_DATASET: 'false',
      RABBITMQ_STREAM_URL: SERVICE_URLS.rabbitmq,
      RABBITMQ_STREAM_PREFIX: prefix,
      ...extra,
    };
    const runnerDir = path.join(dataDir, 'gpu-runner');
    // records every telemetry message, to count what the runner really did
    const telemetry: Envelope[] = [];
    observer = await createBroker({ rabbitmqUrl: SERVICE_URLS.rabbitmq, streamPrefix: prefix, log: silentLogger() });
    await observer.subscribe(STREAMS.telemetry, { from: 'first' }, (e) => void telemetry.push(e));
    return {
      api: new Api(`http://127.0.0.1:${port}`),
      telemetry,
      runnerDir,
      serve: () => procs.start('serve', ['serve'], env),
      runner: (id: string) => procs.start(`gpu-runner ${id}`, ['gpu-runner', '--id', id, '--backends', 'builtin', '--work-dir', runnerDir, '--heartbeat-seconds', '0.5'], env),
    };
  }

  async function importDataset(api: Api, name: string): Promise<void> {
    const t = await requestAndApprove(api, `import ${datasetDir} as ${name}`);
    await waitThread(api, t.id, 'done');
  }

  async function startTraining(api: Api, dataset: string, name: string): Promise<{ thread: Thread; jobId: string }> {
    const t = await requestAndApprove(api, `train a detector on dataset ${dataset} for ${EPOCHS} epochs`, { dataset, name, ...TRAIN_ARGS });
    const waiting = t.status === 'waiting' ? t : await waitThread(api, t.id, 'waiting', 30_000);
    expect(waiting.waitingFor?.kind).toBe('job');
    return { thread: waiting, jobId: waiting.waitingFor!.id };
  }

  /** Polls the job until `ok` holds, failing with the last job state seen. */
  function waitJob(api: Api, jobId: string, what: string, ok: (j: Job) => boolean, timeoutMs = 90_000): Promise<Job> {
    return eventually(
      `job ${jobId}: ${what}`,
      async (seen) => {
        const j = await api.get<Job>(`/api/jobs/${jobId}`);
        seen({ status: j.status, attempt: j.attempt, epochsDone: j.epochsDone, message: j.message });
        return ok(j) ? j : undefined;
      },
      timeoutMs,
      100,
    );
  }

  const epochsOf = async (api: Api, jobId: string, attempt: number) =>
    (await api.get<{ epochs: Array<{ epoch: number; attempt: number }> }>(`/api/jobs/${jobId}/metrics?attempt=${attempt}`)).epochs.map((e) => e.epoch);

  const statuses = (telemetry: Envelope[], jobId: string, status: string) =>
    telemetry
      .filter((e) => e.type === 'train.status')
      .map((e) => e.payload as MessagePayload<'train.status'>)
      .filter((p) => p.jobId === jobId && p.status === status)
      .map((p) => p.attempt);

  it('(c) the platform killed mid-training: training goes on, the job finishes after the restart with every epoch once and one model version', async () => {
    const env = await environment({ JOB_HEARTBEAT_TIMEOUT_S: '60' });
    let serve = env.serve();
    const creds = await adminCredentials(serve);
    const api = await env.api.login(creds);
    const runner = env.runner('gpu-c');
    await importDataset(api, 'crash-c');
    const { thread, jobId } = await startTraining(api, 'crash-c', 'crash-c');

    const before = await waitJob(api, jobId, 'first epoch recorded', (j) => j.epochsDone >= 1);
    await serve.kill();
    expect(before.epochsDone, 'the platform must be killed while epochs are still to come').toBeLessThan(EPOCHS);

    // While the platform is down the runner trains on: every epoch reaches the stream, then the upload to the
    // platform's signed URL fails and is retried.
    await eventually(`all ${EPOCHS} epochs on the stream while the platform is down`, (seen) => {
      const epochs = env.telemetry.filter((e) => e.type === 'train.metrics' && (e.payload as MessagePayload<'train.metrics'>).kind === 'epoch').map((e) => (e.payload as MessagePayload<'train.metrics'>).epoch);
      seen(epochs);
      return epochs.includes(EPOCHS) ? true : undefined;
    }, 90_000);
    // ...and the runner reaches its upload while the platform is still down (retrying it, or giving up)
    await eventually('the runner to try its upload while the platform is down', (seen) => {
      seen(runner.output().slice(-1500));
      const gaveUp = statuses(env.telemetry, jobId, 'failed').length > 0;
      return runner.output().includes('artifact upload failed; retrying') || gaveUp ? true : undefined;
    }, 30_000);

    serve = env.serve();
    await api.login(creds);
    const done = await waitThread(api, thread.id, 'done');
    expect(done.report).toMatch(new RegExp(`training ${jobId} succeeded`));
    const job = await api.get<Job>(`/api/jobs/${jobId}`);
    expect(job).toMatchObject({ status: 'succeeded', attempt: 1, epochsDone: EPOCHS, runnerId: 'gpu-c' });
    // no gap and no duplicate: epochs 1..N once each, including those sent while the platform was down
    expect(await epochsOf(api, jobId, 1)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    const { versions } = await api.get<{ versions: Array<{ id: string; lineage: { jobId?: string } }> }>('/api/models?name=crash-c');
    expect(versions).toHaveLength(1);
    expect(versions[0]!.id).toBe(job.modelVersionId);
    expect(runner.output()).toContain('artifact uploaded after retrying');
    const audit = await api.get<{ total: number }>('/api/audit?tool=start_training&action=tool.started');
    expect(audit.total).toBe(1);
    await serve.kill();
    await runner.kill();
  }, 180_000);

  it('(e) the GPU runner killed mid-training: re-queued after the heartbeat timeout, run once on the restarted runner, then failed with what to do when attempts run out', async () => {
    const env = await environment({ JOB_HEARTBEAT_TIMEOUT_S: '6', JOB_MAX_ATTEMPTS: '2' });
    const serve = env.serve();
    const api = await env.api.login(await adminCredentials(serve));
    let runner: CliProcess = env.runner('gpu-e');
    await importDataset(api, 'crash-e');

    // 1. killed during attempt 1: re-queued, and the restarted runner runs attempt 2 once
    const first = await startTraining(api, 'crash-e', 'crash-e');
    // the person follows the job in the web UI: its room on the chat socket
    const socket = connect(api.base, { transports: ['websocket'], extraHeaders: { cookie: api.cookie }, reconnection: false, forceNew: true });
    const shown: Array<{ type: string; message?: string }> = [];
    socket.on('event', (e: { type: string; message?: string }) => void shown.push(e));
    await new Promise<void>((resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject)));
    expect(await socket.emitWithAck('subscribe', { kind: 'job', id: first.jobId })).toEqual({ ok: true });
    const running = await waitJob(api, first.jobId, 'a first epoch', (j) => j.epochsDone >= 1);
    await runner.kill();
    expect(running.attempt, 'attempt 1 was re-queued while its runner was alive (heartbeat timeout too short for this machine?)').toBe(1);
    const requeued = await waitJob(api, first.jobId, 're-queued after the heartbeat timeout', (j) => j.attempt === 2, 30_000);
    expect(requeued.status).toBe('queued');
    expect(requeued.message).toBe('runner gpu-e stopped responding; re-queued (attempt 2 of 2)');
    expect((await api.get<Thread>(`/api/conversations/${first.thread.id}`)).status).toBe('waiting');
    await eventually('the re-queue shown on the job\'s socket room', (seen) => {
      seen(shown.map((e) => `${e.type}: ${e.message ?? ''}`));
      return shown.some((e) => e.type === 'training.status' && e.message === requeued.message) ? true : undefined;
    }, 10_000);
    socket.close();

    runner = env.runner('gpu-e');
    const done = await waitThread(api, first.thread.id, 'done');
    expect(done.report).toContain(`training ${first.jobId} succeeded on attempt 2 of 2 (re-queued after its runner stopped responding)`);
    expect(await epochsOf(api, first.jobId, 2)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    expect(statuses(env.telemetry, first.jobId, 'running')).toEqual([1, 2]);
    expect(statuses(env.telemetry, first.jobId, 'succeeded')).toEqual([2]);
    const claims = JSON.parse(readFileSync(path.join(env.runnerDir, 'claims.json'), 'utf8')) as Record<string, { state: string }>;
    expect(claims[`${first.jobId}#1`]?.state).toBe('running');
    expect(claims[`${first.jobId}#2`]?.state).toBe('succeeded');
    const { versions } = await api.get<{ versions: unknown[] }>('/api/models?name=crash-e');
    expect(versions).toHaveLength(1);

    // 2. killed in every attempt: failed, and the conversation says what happened and what to do
    const second = await startTraining(api, 'crash-e', 'crash-e2');
    expect((await waitJob(api, second.jobId, 'a first epoch', (j) => j.epochsDone >= 1)).attempt).toBe(1);
    await runner.kill();
    await waitJob(api, second.jobId, 're-queued after the heartbeat timeout', (j) => j.attempt === 2, 30_000);
    runner = env.runner('gpu-e');
    await waitJob(api, second.jobId, 'first epoch of attempt 2', (j) => j.attempt === 2 && j.epochsDone >= 1);
    await runner.kill();
    const failed = await waitJob(api, second.jobId, 'failed after the second heartbeat timeout', (j) => j.status === 'failed', 30_000);
    expect(failed.message).toMatch(/^runner gpu-e stopped responding for 6 s; the job failed after 2 attempts\. Check that runner gpu-e is running again \(visioninapp gpu-runner --id gpu-e\), then start the training again$/);
    const told = await waitThread(api, second.thread.id, 'failed');
    expect(told.report).toContain(`training ${second.jobId} failed: ${failed.message}`);
    // said once, without the figures of the unfinished run
    expect(told.report!.split(failed.message!)).toHaveLength(2);
    expect(told.report).not.toMatch(/mAP50/);
    expect((await api.get<{ versions: unknown[] }>('/api/models?name=crash-e2')).versions).toHaveLength(0);
    await serve.kill();
  }, 180_000);
});
