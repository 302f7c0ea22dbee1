import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io as connect } from 'socket.io-client';
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
  sleepUnless,
  waitThread,
  type CliProcess,
  type Thread,
} from './processes.js';

// Crash recovery around training, with real processes on the real broker (TEST_RABBITMQ_STREAM_URL):
// `visioninapp serve` (SQLite in DATA_DIR, or a temporary MariaDB database) and `visioninapp gpu-runner`,
// each killed with SIGKILL at a random delay inside a window (printed with the variable that pins it).

const EPOCHS = 6;
/** Small enough to train in seconds on a loaded 2-core machine, long enough (an epoch or more a second) to crash in the middle. */
const TRAIN_ARGS = { backend: 'builtin', model: 'builtin-t', epochs: EPOCHS, imgsz: 64, batch: 8 };
/** (c): from the approval of start_training (the runner up) to about the end of the training (tool, dispatch, download, epochs, upload). */
const SERVE_WINDOW_MS = 8_000;
/** (e): from the runner reporting an attempt running (download, start-up, the first epochs); cut short two epochs before the end. */
const RUNNER_WINDOW_MS = 5_000;

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

export type CrashDatabase = 'sqlite' | 'mysql';

/** The training crash scenarios (c) and (e) with the platform on `database`. */
export async function trainingCrashSuite(database: CrashDatabase): Promise<void> {
  const skip =
    (await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL')) ||
    (database === 'mysql' && (await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL')));
  const torchMissing = await skipWithoutTorch();

  describe.skipIf(skip || torchMissing)(
    `crash recovery during training (real serve and gpu-runner processes, RabbitMQ streams, ${database})`,
    () => {
      const procs = new Processes();
      const dirs: string[] = [];
      const prefixes: string[] = [];
      const observers: Broker[] = [];
      const drops: Array<() => Promise<void>> = [];
      let datasetDir: string;

      beforeAll(async () => {
        datasetDir = tmp('vrel-squares-');
        await writeSquaresDataset(datasetDir, { counts: { train: 32, val: 8, test: 8 }, size: 64 });
      });

      afterAll(async () => {
        await procs.killAll();
        for (const o of observers) await o.close().catch(() => undefined);
        for (const p of prefixes) await deleteStreams(p).catch(() => undefined);
        for (const d of drops) await d().catch(() => undefined);
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      }, 60_000);

      function tmp(prefix: string): string {
        const d = mkdtempSync(path.join(tmpdir(), prefix));
        dirs.push(d);
        return d;
      }

      /** One environment: a data folder (and database), a port, a stream prefix, and the commands to start serve and the runner in it. */
      async function environment(extra: Record<string, string>) {
        const prefix = `crash-${uniqueSuffix()}-`;
        prefixes.push(prefix);
        const dataDir = tmp('vrel-crash-');
        const port = await freePort();
        const db = database === 'mysql' ? await createTempMysqlDatabase() : undefined;
        if (db) drops.push(db.drop);
        const env = {
          DATA_DIR: dataDir,
          ...(db ? { DATABASE_URL: db.url } : {}),
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
        const observer = await createBroker({
          rabbitmqUrl: SERVICE_URLS.rabbitmq,
          streamPrefix: prefix,
          log: silentLogger(),
        });
        observers.push(observer);
        await observer.subscribe(STREAMS.telemetry, { from: 'first' }, (e) => void telemetry.push(e));
        return {
          api: new Api(`http://127.0.0.1:${port}`),
          telemetry,
          runnerDir,
          serve: () => procs.start('serve', ['serve'], env),
          runner: (id: string) =>
            procs.start(
              `gpu-runner ${id}`,
              [
                'gpu-runner',
                '--id',
                id,
                '--backends',
                'builtin',
                '--work-dir',
                runnerDir,
                '--heartbeat-seconds',
                '0.5',
              ],
              env,
            ),
        };
      }

      async function importDataset(api: Api, name: string): Promise<void> {
        const t = await requestAndApprove(api, `import ${datasetDir} as ${name}`);
        await waitThread(api, t.id, 'done');
        const ready = await api.get<{ checks: Array<{ port: string; adapter: string }> }>('/readyz');
        expect(ready.checks.find((c) => c.port === 'db')?.adapter).toBe(database);
      }

      async function startTraining(
        api: Api,
        dataset: string,
        name: string,
      ): Promise<{ thread: Thread; jobId: string }> {
        const t = await requestAndApprove(
          api,
          `train a detector on dataset ${dataset} for ${EPOCHS} epochs`,
          { dataset, name, ...TRAIN_ARGS },
        );
        const waiting = t.status === 'waiting' ? t : await waitThread(api, t.id, 'waiting', 30_000);
        expect(waiting.waitingFor?.kind).toBe('job');
        return { thread: waiting, jobId: waiting.waitingFor!.id };
      }

      /** Polls the job until `ok` holds, failing with the last job state seen. */
      function waitJob(
        api: Api,
        jobId: string,
        what: string,
        ok: (j: Job) => boolean,
        timeoutMs = 90_000,
      ): Promise<Job> {
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

      /**
       * Kills the runner at a random delay after `attempt` was reported running, before the job's last two
       * epochs (so the attempt is always cut short), and returns the job as the platform saw it just before.
       */
      async function killRunnerMidAttempt(
        api: Api,
        runner: CliProcess,
        jobId: string,
        attempt: number,
        label: string,
      ): Promise<Job> {
        await waitJob(
          api,
          jobId,
          `attempt ${attempt} running`,
          (j) => j.attempt === attempt && j.status === 'running',
        );
        let last: Job | undefined;
        const cut = await sleepUnless(
          killDelay(
            `${label}: gpu-runner, after attempt ${attempt} started`,
            'CRASH_TRAINING_RUNNER_KILL_MS',
            RUNNER_WINDOW_MS,
          ),
          async () => {
            last = await api.get<Job>(`/api/jobs/${jobId}`);
            return last.epochsDone >= EPOCHS - 2;
          },
        );
        last = await api.get<Job>(`/api/jobs/${jobId}`);
        await runner.kill();
        console.info(
          `[crash scenario] ${label}: runner killed at epoch ${last.epochsDone} of attempt ${last.attempt}${cut ? ' (window cut short before the last epochs)' : ''}`,
        );
        return last;
      }

      /** Adds what the job, the runner and the platform showed last to a failure, to tell a slow machine from a lost job. */
      async function explained<T>(api: Api, procs: CliProcess[], wait: Promise<T>): Promise<T> {
        return wait.catch(async (err: Error) => {
          const jobs = await api.get<{ jobs: Job[] }>('/api/jobs').then(
            (r) => r.jobs,
            (e: Error) => e.message,
          );
          const tails = procs
            .map((p) => `--- ${p.label} (last output) ---\n${p.output().slice(-2500)}`)
            .join('\n');
          throw new Error(`${err.message}\njobs: ${JSON.stringify(jobs).slice(0, 1500)}\n${tails}`);
        });
      }

      const epochsOf = async (api: Api, jobId: string, attempt: number) =>
        (
          await api.get<{ epochs: Array<{ epoch: number; attempt: number }> }>(
            `/api/jobs/${jobId}/metrics?attempt=${attempt}`,
          )
        ).epochs.map((e) => e.epoch);

      const statuses = (telemetry: Envelope[], jobId: string | undefined, status: string) =>
        telemetry
          .filter((e) => e.type === 'train.status')
          .map((e) => e.payload as MessagePayload<'train.status'>)
          .filter((p) => (jobId === undefined || p.jobId === jobId) && p.status === status)
          .map((p) => p.attempt);

      const epochsOnStream = (telemetry: Envelope[]) =>
        telemetry
          .filter(
            (e) =>
              e.type === 'train.metrics' && (e.payload as MessagePayload<'train.metrics'>).kind === 'epoch',
          )
          .map((e) => (e.payload as MessagePayload<'train.metrics'>).epoch);

      it('(c) the platform killed at a random point between the approval and the end of training: the job finishes after the restart with every epoch once and one model version', async () => {
        const env = await environment({ JOB_HEARTBEAT_TIMEOUT_S: '60' });
        let serve = env.serve();
        const creds = await adminCredentials(serve);
        const api = await env.api.login(creds);
        const runner = env.runner('gpu-c');
        await importDataset(api, 'crash-c');
        const started = await api.post<Thread>('/api/conversations', {
          message: `train a detector on dataset crash-c for ${EPOCHS} epochs`,
        });
        expect(started.pendingApproval?.tool).toBe('start_training');
        const decision = {
          approvalId: started.pendingApproval!.approvalId,
          decision: 'edit',
          args: { dataset: 'crash-c', name: 'crash-c', ...TRAIN_ARGS },
        };
        // the window starts with the runner up (its start-up, importing PyTorch, is not what is being crashed)
        await eventually(
          'gpu-c to heartbeat',
          () => (env.telemetry.some((e) => e.type === 'runner.heartbeat') ? true : undefined),
          120_000,
        );

        // killed anywhere from inside start_training (approval consumed, job maybe created, maybe dispatched) to the upload
        const delay = killDelay(
          '(c) serve, after start_training was approved',
          'CRASH_TRAINING_SERVE_KILL_MS',
          SERVE_WINDOW_MS,
        );
        const decided = api.post<Thread>(`/api/conversations/${started.id}/decide`, decision).then(
          () => true,
          () => false,
        );
        await new Promise((r) => setTimeout(r, delay));
        await serve.kill();
        const killedAt = Date.now();
        const landed = await decided;
        console.info(
          `[crash scenario] (c) decision answered before the kill: ${landed}; on the stream at the kill: running ${JSON.stringify(statuses(env.telemetry, undefined, 'running'))}, epochs ${JSON.stringify(epochsOnStream(env.telemetry))}`,
        );

        // While the platform is down the runner goes on with what it was given: every epoch reaches the stream,
        // then the upload to the platform's signed URL fails and is retried (or, killed before the dataset was
        // fetched, the download is retried). Wait until it got there, or until it is clear the job never reached the runner.
        await eventually(
          'the runner to do what it can while the platform is down',
          (seen) => {
            const running = statuses(env.telemetry, undefined, 'running');
            const final = [
              ...statuses(env.telemetry, undefined, 'succeeded'),
              ...statuses(env.telemetry, undefined, 'failed'),
            ];
            const retrying =
              runner.output().includes('artifact upload failed; retrying') ||
              runner.output().includes('dataset download failed; retrying');
            seen({
              running,
              final,
              retrying,
              epochs: epochsOnStream(env.telemetry),
              runner: runner.output().slice(-800),
            });
            if (final.length > 0 || retrying) return true;
            return running.length === 0 && Date.now() - killedAt > 5_000 ? true : undefined;
          },
          240_000,
        );

        serve = env.serve();
        await api.login(creds);
        if (!landed) {
          const approval = await api.get<{ status: string }>(`/api/approvals/${decision.approvalId}`);
          if (approval.status === 'pending')
            await api.post<Thread>(`/api/conversations/${started.id}/decide`, decision);
        }
        const done = await explained(api, [runner, serve], waitThread(api, started.id, 'done', 180_000));
        const { jobs } = await api.get<{ jobs: Job[] }>('/api/jobs');
        // exactly once: one job for the one approved step, started once on the audit log
        expect(jobs.map((j) => j.id)).toHaveLength(1);
        const jobId = jobs[0]!.id;
        expect(done.report).toMatch(new RegExp(`training ${jobId} succeeded`));
        const job = await api.get<Job>(`/api/jobs/${jobId}`);
        expect(job).toMatchObject({ status: 'succeeded', attempt: 1, epochsDone: EPOCHS, runnerId: 'gpu-c' });
        // no gap and no duplicate: epochs 1..N once each, including those sent while the platform was down
        expect(await epochsOf(api, jobId, 1)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
        expect(statuses(env.telemetry, jobId, 'running')).toEqual([1]);
        expect(statuses(env.telemetry, jobId, 'succeeded')).toEqual([1]);
        const { versions } = await api.get<{ versions: Array<{ id: string; lineage: { jobId?: string } }> }>(
          '/api/models?name=crash-c',
        );
        expect(versions).toHaveLength(1);
        expect(versions[0]!.id).toBe(job.modelVersionId);
        // an upload that found the platform down was retried until it went through
        if (runner.output().includes('artifact upload failed; retrying'))
          expect(runner.output()).toContain('artifact uploaded after retrying');
        if (runner.output().includes('dataset download failed; retrying'))
          expect(runner.output()).toContain('dataset downloaded after retrying');
        const audit = await api.get<{ total: number }>('/api/audit?tool=start_training&action=tool.started');
        expect(audit.total).toBe(1);
        await serve.kill();
        await runner.kill();
      }, 600_000);

      it('(e) the GPU runner killed at a random point of an attempt: re-queued after the heartbeat timeout, run once on the restarted runner, then failed with what to do when attempts run out', async () => {
        const env = await environment({ JOB_HEARTBEAT_TIMEOUT_S: '6', JOB_MAX_ATTEMPTS: '2' });
        const serve = env.serve();
        const api = await env.api.login(await adminCredentials(serve));
        let runner: CliProcess = env.runner('gpu-e');
        await importDataset(api, 'crash-e');

        // 1. killed during attempt 1: re-queued, and the restarted runner runs attempt 2 once
        const first = await startTraining(api, 'crash-e', 'crash-e');
        // the person follows the job in the web UI: its room on the chat socket
        const socket = connect(api.base, {
          transports: ['websocket'],
          extraHeaders: { cookie: api.cookie },
          reconnection: false,
          forceNew: true,
        });
        const shown: Array<{ type: string; message?: string }> = [];
        socket.on('event', (e: { type: string; message?: string }) => void shown.push(e));
        await new Promise<void>(
          (resolve, reject) => (
            socket.once('connect', () => resolve()),
            socket.once('connect_error', reject)
          ),
        );
        expect(await socket.emitWithAck('subscribe', { kind: 'job', id: first.jobId })).toEqual({ ok: true });
        const running = await killRunnerMidAttempt(api, runner, first.jobId, 1, '(e.1)');
        expect(
          running.attempt,
          'attempt 1 was re-queued while its runner was alive (heartbeat timeout too short for this machine?)',
        ).toBe(1);
        expect(running.status).toBe('running');
        const requeued = await waitJob(
          api,
          first.jobId,
          're-queued after the heartbeat timeout',
          (j) => j.attempt === 2,
          30_000,
        );
        expect(requeued.status).toBe('queued');
        expect(requeued.message).toBe('runner gpu-e stopped responding; re-queued (attempt 2 of 2)');
        expect((await api.get<Thread>(`/api/conversations/${first.thread.id}`)).status).toBe('waiting');
        await eventually(
          "the re-queue shown on the job's socket room",
          (seen) => {
            seen(shown.map((e) => `${e.type}: ${e.message ?? ''}`));
            return shown.some((e) => e.type === 'training.status' && e.message === requeued.message)
              ? true
              : undefined;
          },
          10_000,
        );
        socket.close();

        runner = env.runner('gpu-e');
        const done = await explained(api, [runner, serve], waitThread(api, first.thread.id, 'done', 180_000));
        expect(done.report).toContain(
          `training ${first.jobId} succeeded on attempt 2 of 2 (re-queued after its runner stopped responding)`,
        );
        expect(await epochsOf(api, first.jobId, 2)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
        expect(statuses(env.telemetry, first.jobId, 'running')).toEqual([1, 2]);
        expect(statuses(env.telemetry, first.jobId, 'succeeded')).toEqual([2]);
        const claims = JSON.parse(readFileSync(path.join(env.runnerDir, 'claims.json'), 'utf8')) as Record<
          string,
          { state: string }
        >;
        expect(claims[`${first.jobId}#1`]?.state).toBe('running');
        expect(claims[`${first.jobId}#2`]?.state).toBe('succeeded');
        const { versions } = await api.get<{ versions: unknown[] }>('/api/models?name=crash-e');
        expect(versions).toHaveLength(1);

        // 2. killed in every attempt: failed, and the conversation says what happened and what to do
        const second = await startTraining(api, 'crash-e', 'crash-e2');
        expect((await killRunnerMidAttempt(api, runner, second.jobId, 1, '(e.2)')).attempt).toBe(1);
        await waitJob(
          api,
          second.jobId,
          're-queued after the heartbeat timeout',
          (j) => j.attempt === 2,
          30_000,
        );
        runner = env.runner('gpu-e');
        expect((await killRunnerMidAttempt(api, runner, second.jobId, 2, '(e.2)')).attempt).toBe(2);
        const failed = await waitJob(
          api,
          second.jobId,
          'failed after the second heartbeat timeout',
          (j) => j.status === 'failed',
          30_000,
        );
        expect(failed.message).toMatch(
          /^runner gpu-e stopped responding for 6 s; the job failed after 2 attempts\. Check that runner gpu-e is running again \(visioninapp gpu-runner --id gpu-e\), then start the training again$/,
        );
        const told = await waitThread(api, second.thread.id, 'failed');
        expect(told.report).toContain(`training ${second.jobId} failed: ${failed.message}`);
        // said once, without the figures of the unfinished run
        expect(told.report!.split(failed.message!)).toHaveLength(2);
        expect(told.report).not.toMatch(/mAP50/);
        expect((await api.get<{ versions: unknown[] }>('/api/models?name=crash-e2')).versions).toHaveLength(
          0,
        );
        expect(statuses(env.telemetry, second.jobId, 'succeeded')).toEqual([]);
        await serve.kill();
      }, 400_000);
    },
  );
}
