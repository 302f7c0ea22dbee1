import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeEnvelope, type Envelope, type MessagePayload } from '../protocol/envelope.js';
import { MemoryBroker } from '../services/infra/broker/memory.js';
import { STREAMS } from '../services/infra/broker/port.js';
import { silentLogger } from '../core/log.js';
import { BuiltinTrainer } from './backends/builtin.js';
import { writeYoloStandIn } from './backends/stand-ins.fixtures.js';
import { UltralyticsTrainer } from './backends/ultralytics.js';
import { GpuRunner } from './runner.js';
import { skipWithoutTorch, writeSquaresDataset } from './runner.fixtures.js';

const ARTIFACTS = ['model.onnx', 'metrics.json', 'results.csv', 'report.md', 'train.log'];
const torchMissing = await skipWithoutTorch();

let root: string;
let server: http.Server;
let base: string;
const uploads = new Map<string, Buffer>();
/** Answers for the next PUTs under a job's upload folder (e.g. 503 while storage is down), before normal service. */
const putAnswers = new Map<string, number[]>();
/** Dataset downloads answered 503 before normal service (the platform restarting). */
let failingGets = 0;
const runners: GpuRunner[] = [];
let broker: MemoryBroker;
let telemetry: Envelope[];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gpu-runner-'));
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname.startsWith('/files/')) {
      if (failingGets > 0) {
        failingGets--;
        res.statusCode = 503;
        res.end('platform restarting');
        return;
      }
      try {
        res.end(readFileSync(path.join(root, decodeURIComponent(url.pathname.slice('/files/'.length)))));
      } catch {
        res.statusCode = 404;
        res.end();
      }
    } else if (req.method === 'PUT' && url.pathname.startsWith('/upload/')) {
      const answer = putAnswers.get(url.pathname.split('/')[2]!)?.shift();
      if (answer !== undefined) {
        res.statusCode = answer;
        res.end(answer === 403 ? 'signature expired' : 'storage unavailable');
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        uploads.set(url.pathname.slice('/upload/'.length), Buffer.concat(chunks));
        res.end();
      });
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(root, { recursive: true, force: true });
});

async function setup(): Promise<void> {
  broker = new MemoryBroker({});
  telemetry = [];
  await broker.subscribe(STREAMS.telemetry, { from: 'first' }, (e) => {
    telemetry.push(e);
  });
}
afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
  await broker.close();
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) =>
    statSync(path.join(dir, n)).isDirectory() ? walk(path.join(dir, n)) : [path.join(dir, n)],
  );
}

function startMessage(
  jobId: string,
  datasetDir: string,
  config: Partial<MessagePayload<'train.start'>['config']> = {},
  runnerId = 'r1',
): MessagePayload<'train.start'> {
  const files = walk(datasetDir)
    .filter((f) => !f.endsWith('data.yaml'))
    .map((f) => {
      const bytes = readFileSync(f);
      return {
        path: path.relative(datasetDir, f),
        url: `${base}/files/${encodeURIComponent(path.relative(root, f))}`,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
      };
    });
  return {
    jobId,
    attempt: 1,
    runnerId,
    config: { backend: 'ultralytics', model: 'yolo11n', epochs: 3, imgsz: 64, batch: 4, ...config },
    dataset: { name: 'squares', version: 1, classNames: ['red', 'blue'], files },
    uploads: Object.fromEntries(
      ARTIFACTS.map((n) => [n, { url: `${base}/upload/${jobId}/${n}`, key: `models/${jobId}/${n}` }]),
    ),
  };
}

const send = (
  type: 'train.start' | 'train.cancel',
  payload: MessagePayload<'train.start'> | MessagePayload<'train.cancel'>,
) => broker.publish(STREAMS.control, makeEnvelope(type, payload as never, { source: 'test' }));

function payloads<T extends Envelope['type']>(type: T, jobId?: string): Record<string, unknown>[] {
  return telemetry
    .filter(
      (e) => e.type === type && (jobId === undefined || (e.payload as { jobId?: string }).jobId === jobId),
    )
    .map((e) => e.payload as Record<string, unknown>);
}

async function waitFor<T>(fn: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const finalStatus = (jobId: string) =>
  payloads('train.status', jobId).find((p) =>
    ['succeeded', 'failed', 'cancelled'].includes(p.status as string),
  );

async function standInRunner(workDir: string, epochDelayMs = 50): Promise<GpuRunner> {
  const yolo = await writeYoloStandIn(path.join(root, `bin-${epochDelayMs}`), { epochDelayMs });
  const r = new GpuRunner({
    id: 'r1',
    broker,
    log: silentLogger(),
    workDir,
    backends: [new UltralyticsTrainer({ yolo })],
    heartbeatMs: 200,
    logFlushMs: 50,
  });
  runners.push(r);
  await r.start();
  return r;
}

describe(GpuRunner.name, () => {
  let dataset: string;
  beforeAll(async () => {
    dataset = path.join(root, 'ds');
    await writeSquaresDataset(dataset, { counts: { train: 6, val: 2, test: 2 }, size: 64 });
  });

  it('heartbeats its backends and device, runs an assigned job once and uploads its artifacts with sha256', async () => {
    await setup();
    const workDir = path.join(root, 'work-a');
    const runner = await standInRunner(workDir);
    const hb = await waitFor(() => payloads('runner.heartbeat')[0]);
    expect(hb).toMatchObject({
      runnerId: 'r1',
      backends: ['ultralytics'],
      device: { kind: expect.stringMatching(/cpu|cuda/) },
    });

    await send('train.start', startMessage('job-other', dataset, {}, 'someone-else'));
    const start = startMessage('job-1', dataset);
    await send('train.start', start);
    await send('train.start', start); // a repeated message for the same job and attempt
    const done = await waitFor(() => finalStatus('job-1'));
    expect(done.status, String(done.message)).toBe('succeeded');
    expect(payloads('train.status', 'job-1').map((p) => p.status)).toEqual([
      'claimed',
      'running',
      'succeeded',
    ]);
    expect(payloads('train.status', 'job-other')).toEqual([]);
    expect(payloads('train.metrics', 'job-1').map((p) => [p.kind, p.epoch])).toEqual([
      ['epoch', 1],
      ['epoch', 2],
      ['epoch', 3],
    ]);
    const logs = payloads('train.log', 'job-1');
    expect(logs.map((l) => l.seq)).toEqual(logs.map((_, i) => i));
    expect(logs.flatMap((l) => l.lines as string[]).join('\n')).toMatch(
      /downloading \d+ files of dataset squares v1/,
    );

    const ready = await waitFor(() => payloads('artifact.ready', 'job-1')[0]);
    const artifacts = ready.artifacts as { name: string; key: string; sha256: string; size: number }[];
    expect(artifacts.map((a) => a.name).sort()).toEqual([...ARTIFACTS].sort());
    for (const a of artifacts) {
      const body = uploads.get(`job-1/${a.name}`)!;
      expect(a.sha256).toBe(createHash('sha256').update(body).digest('hex'));
      expect(a.size).toBe(body.length);
    }
    expect(ready).toMatchObject({
      runnerId: 'r1',
      model: { layout: 'ultralytics', inputSize: 64, classNames: ['red', 'blue'] },
      metrics: { mAP50: expect.any(Number) },
    });

    // a restarted runner with the same work folder never runs the job again
    await runner.stop();
    const again = await standInRunner(workDir);
    await send('train.start', start);
    await new Promise((r) => setTimeout(r, 300));
    expect(payloads('train.status', 'job-1').map((p) => p.status)).toEqual([
      'claimed',
      'running',
      'succeeded',
    ]);
    await again.stop();
  });

  it('retries an upload while storage answers 5xx, and fails at once on an expired URL', async () => {
    await setup();
    await standInRunner(path.join(root, 'work-u'));
    putAnswers.set('job-u', [503, 503]);
    await send('train.start', startMessage('job-u', dataset, { epochs: 1 }));
    const ok = await waitFor(() => finalStatus('job-u'), 20_000);
    expect(ok.status, String(ok.message)).toBe('succeeded');
    expect(putAnswers.get('job-u')).toEqual([]);
    const ready = await waitFor(() => payloads('artifact.ready', 'job-u')[0]);
    expect((ready.artifacts as { name: string }[]).map((a) => a.name).sort()).toEqual([...ARTIFACTS].sort());

    putAnswers.set('job-x', [403]);
    await send('train.start', startMessage('job-x', dataset, { epochs: 1 }));
    const failed = await waitFor(() => finalStatus('job-x'), 20_000);
    expect(failed).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/HTTP 403 signature expired; the presigned URL may have expired/),
    });
  });

  it('retries the dataset download while the platform serving it answers 5xx (a restart), and runs the job once', async () => {
    await setup();
    await standInRunner(path.join(root, 'work-d'));
    failingGets = 6;
    await send('train.start', startMessage('job-d', dataset, { epochs: 1 }));
    const ok = await waitFor(() => finalStatus('job-d'), 30_000);
    expect(ok.status, String(ok.message)).toBe('succeeded');
    expect(failingGets).toBe(0);
    expect(payloads('train.status', 'job-d').map((p) => p.status)).toEqual([
      'claimed',
      'running',
      'succeeded',
    ]);
  });

  it('cancels a running job within 5 seconds', async () => {
    await setup();
    await standInRunner(path.join(root, 'work-b'), 2000);
    await send('train.start', startMessage('job-c', dataset, { epochs: 100 }));
    await waitFor(() => payloads('train.status', 'job-c').find((p) => p.status === 'running'));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await send('train.cancel', { jobId: 'job-c', attempt: 1, reason: 'test' });
    const done = await waitFor(() => finalStatus('job-c'), 6000);
    expect(done.status).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(payloads('artifact.ready', 'job-c')).toEqual([]);
  });

  it('fails a job whose dataset has no labels, or a corrupt file, with a clear message', async () => {
    await setup();
    await standInRunner(path.join(root, 'work-c'));
    const empty = path.join(root, 'ds-empty');
    await writeSquaresDataset(empty, { counts: { train: 3, val: 1, test: 0 }, size: 64, labels: false });
    await send('train.start', startMessage('job-empty', empty));
    expect(await waitFor(() => finalStatus('job-empty'))).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/no labels.*annotate/),
    });

    const bad = startMessage('job-bad', dataset);
    bad.dataset.files[0]!.sha256 = '0'.repeat(64);
    await send('train.start', bad);
    expect(await waitFor(() => finalStatus('job-bad'))).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/corrupt.*re-upload/),
    });

    await send('train.start', startMessage('job-yolox', dataset, { backend: 'yolox', model: 'yolox-s' }));
    expect(await waitFor(() => finalStatus('job-yolox'))).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/backend yolox is not available on runner r1/),
    });
  });

  it("answers a status.request by re-sending the final envelopes of the job (same ids), ignoring other runners' jobs", async () => {
    await setup();
    const published: Envelope[] = [];
    const publish = broker.publish.bind(broker);
    broker.publish = async (stream, env) => {
      if (stream === STREAMS.telemetry) published.push(env);
      return publish(stream, env);
    };
    await standInRunner(path.join(root, 'work-s'));
    const bad = startMessage('job-gap', dataset);
    bad.dataset.files[0]!.sha256 = '0'.repeat(64);
    await send('train.start', bad);
    await waitFor(() => finalStatus('job-gap'));
    const final = published.find(
      (e) =>
        e.type === 'train.status' && (e.payload as { jobId: string; status: string }).status === 'failed',
    )!;
    await broker.publish(
      STREAMS.control,
      makeEnvelope(
        'status.request',
        {
          reason: 'retention gap',
          jobs: [
            { jobId: 'job-gap', attempt: 1, runnerId: 'r1' },
            { jobId: 'job-elsewhere', attempt: 1, runnerId: 'r2' },
          ],
          deployments: [],
        },
        { source: 'test' },
      ),
    );
    await waitFor(() => published.filter((e) => e.id === final.id).length === 2);
    expect(published.filter((e) => (e.payload as { jobId?: string }).jobId === 'job-elsewhere')).toEqual([]);
  });

  it('does not advertise builtin without PyTorch and fails its jobs with how to install it', async () => {
    await setup();
    const r = new GpuRunner({
      id: 'r1',
      broker,
      log: silentLogger(),
      workDir: path.join(root, 'work-f'),
      backends: [new BuiltinTrainer({ python: path.join(root, 'no-python') })],
      heartbeatMs: 200,
    });
    runners.push(r);
    await r.start();
    expect((await waitFor(() => payloads('runner.heartbeat')[0])).backends).toEqual([]);
    expect(r.unavailableReasons.builtin).toMatch(/apt-get install python3-torch python3-onnx/);
    await send('train.start', startMessage('job-nt', dataset, { backend: 'builtin', model: 'builtin-n' }));
    expect(await waitFor(() => finalStatus('job-nt'))).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/builtin is not available.*pip install torch onnx/),
    });
  });

  it('keeps publishing in order when the broker fails for a while', async () => {
    await setup();
    const real = broker.publish.bind(broker);
    let failing = true;
    broker.publish = async (stream, env) => {
      if (failing && stream === STREAMS.telemetry) throw new Error('connection lost');
      return real(stream, env);
    };
    await standInRunner(path.join(root, 'work-d'));
    await send('train.start', startMessage('job-r', dataset));
    await new Promise((r) => setTimeout(r, 1500));
    expect(payloads('train.status', 'job-r')).toEqual([]);
    failing = false;
    const done = await waitFor(() => finalStatus('job-r'));
    expect(done.status).toBe('succeeded');
    expect(payloads('train.metrics', 'job-r').map((p) => p.epoch)).toEqual([1, 2, 3]);
    const seqs = payloads('train.log', 'job-r').map((l) => l.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i));
  });

  describe.skipIf(torchMissing)('with the builtin backend', () => {
    it('trains for real and announces an ONNX model', async () => {
      await setup();
      const r = new GpuRunner({
        id: 'r1',
        broker,
        log: silentLogger(),
        workDir: path.join(root, 'work-e'),
        backends: ['builtin'],
        heartbeatMs: 500,
        logFlushMs: 50,
      });
      runners.push(r);
      await r.start();
      expect(r.backends).toEqual(['builtin']);
      const ds = path.join(root, 'ds-train');
      await writeSquaresDataset(ds, { counts: { train: 16, val: 4, test: 4 }, size: 64 });
      await send(
        'train.start',
        startMessage('job-b', ds, {
          backend: 'builtin',
          model: 'builtin-n',
          epochs: 2,
          imgsz: 64,
          batch: 8,
          extra: { workers: 1 },
        }),
      );
      const done = await waitFor(() => finalStatus('job-b'), 110_000);
      expect(done.status, String(done.message)).toBe('succeeded');
      expect(
        payloads('train.metrics', 'job-b')
          .filter((p) => p.kind === 'epoch')
          .map((p) => p.epoch),
      ).toEqual([1, 2]);
      const ready = await waitFor(() => payloads('artifact.ready', 'job-b')[0]);
      expect((ready.artifacts as { name: string }[]).map((a) => a.name).sort()).toEqual(
        [...ARTIFACTS].sort(),
      );
      expect(uploads.get('job-b/model.onnx')!.length).toBeGreaterThan(10_000);
      await writeFile(path.join(root, 'm.onnx'), uploads.get('job-b/model.onnx')!);
      expect(
        JSON.parse(await readFile(path.join(root, 'work-e', 'claims.json'), 'utf8'))['job-b#1'].state,
      ).toBe('succeeded');
    }, 120_000);
  });
});

describe(`${GpuRunner.name} fine-tuning`, () => {
  let dataset: string;
  let parent: string;
  beforeAll(async () => {
    dataset = path.join(root, 'ds-ft');
    await writeSquaresDataset(dataset, { counts: { train: 6, val: 2, test: 2 }, size: 64 });
    parent = path.join(root, 'parent-best.pt');
    await writeFile(parent, 'weights of helmets@3');
  });

  const withInit = (jobId: string, sha256: string): MessagePayload<'train.start'> => {
    const m = startMessage(jobId, dataset);
    const bytes = readFileSync(parent);
    return {
      ...m,
      uploads: {
        ...m.uploads,
        'best.pt': { url: `${base}/upload/${jobId}/best.pt`, key: `models/${jobId}/best.pt` },
      },
      init: {
        ref: 'helmets@3',
        url: `${base}/files/${encodeURIComponent(path.relative(root, parent))}`,
        sha256,
        size: bytes.length,
        classNames: ['red', 'blue'],
      },
    };
  };

  it('downloads the starting checkpoint, verified by sha256, trains from it and uploads its own best.pt', async () => {
    await setup();
    const workDir = path.join(root, 'work-ft');
    await standInRunner(workDir);
    const sha = createHash('sha256').update(readFileSync(parent)).digest('hex');
    await send('train.start', withInit('job-ft', sha));
    const done = await waitFor(() => finalStatus('job-ft'));
    expect(done.status, String(done.message)).toBe('succeeded');
    const args = JSON.parse(
      await readFile(path.join(workDir, 'jobs', 'job-ft-1', 'out', 'train', 'stand-in-args.json'), 'utf8'),
    ) as { model: string; modelFile: string | null };
    expect(args.model).toBe(path.join(workDir, 'jobs', 'job-ft-1', 'init', 'init.pt'));
    expect(args.modelFile).toBe('weights of helmets@3');
    const ready = payloads('artifact.ready', 'job-ft')[0] as MessagePayload<'artifact.ready'>;
    const best = ready.artifacts.find((a) => a.name === 'best.pt')!;
    expect(best.sha256).toBe(createHash('sha256').update(uploads.get('job-ft/best.pt')!).digest('hex'));
    expect(uploads.get('job-ft/best.pt')!.toString()).toBe('stand-in weights');
  });

  it('fails the job, naming the checkpoint, when its bytes do not match the sha256', async () => {
    await setup();
    await standInRunner(path.join(root, 'work-ft-bad'));
    await send('train.start', withInit('job-ft-bad', 'f'.repeat(64)));
    const done = await waitFor(() => finalStatus('job-ft-bad'));
    expect(done.status).toBe('failed');
    expect(String(done.message)).toMatch(/init\.pt/);
    expect(payloads('artifact.ready', 'job-ft-bad')).toEqual([]);
  });
});
