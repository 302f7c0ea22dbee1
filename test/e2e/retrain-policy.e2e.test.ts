import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallContext } from '../../core/context.js';
import { buildTestDetector } from '../../edge-runner/models.fixtures.js';
import { skipWithoutTorch } from '../../gpu-runner/runner.fixtures.js';
import { makeEnvelope, type MessagePayload, type MessageType } from '../../protocol/envelope.js';
import { STREAMS } from '../../services/infra/broker/port.js';
import { writeTree } from '../../services/datasets/datasets.fixtures.js';
import type { ModelVersion } from '../../services/models/index.js';
import {
  payloads,
  startDevice,
  startE2ePlatform,
  waitFor,
  waitOnline,
  waitRollout,
  type E2eEnv,
} from './harness.js';

// The policy-driven loop on the embedded platform: real edge runners send feedback, a reviewer accepts it, the
// policy fires, and the agent runs the proposal's one plan, each mutating step approved by a person. The GPU
// runner is scripted (it answers train.start with the detector the test queued), so which candidate is better
// is decided by the test, not by a CPU training run. Building the detectors needs python3 with onnx (as torch).
const pythonMissing = await skipWithoutTorch();

const LINE3 = ['jetson-r-a', 'jetson-r-b', 'jetson-r-c'];
const NAMES = ['helmet', 'head'];
// every image holds one helmet at the centre: 0.3 of 96 px, so 19.2 px at the detectors' 64 px input
const CENTRE = { cx: 32, cy: 32, w: 19.2, h: 19.2, cls: 0 };
const approver: CallContext['user'] = {
  userId: 'olivia',
  email: 'olivia@x.test',
  name: 'Olivia',
  role: 'approver',
  kind: 'user',
};

async function writeCentreDataset(dir: string): Promise<void> {
  const files: Record<string, string | Buffer> = { 'data.yaml': `names: [${NAMES.join(', ')}]\n` };
  const splits = { train: 4, val: 2, test: 4 };
  let seed = 0;
  for (const [split, n] of Object.entries(splits)) {
    for (let i = 0; i < n; i++) {
      seed++;
      files[`images/${split}/${split}${i}.jpg`] = await sharp({
        create: {
          width: 96,
          height: 96,
          channels: 3,
          background: { r: 20 * seed, g: 120, b: 200 - 10 * seed },
        },
      })
        .jpeg()
        .toBuffer();
      files[`labels/${split}/${split}${i}.txt`] = '0 0.5 0.5 0.3 0.3\n';
    }
  }
  await writeTree(dir, files);
}

/** A GPU runner on the platform broker that answers each train.start with the next queued detector (and a checkpoint). */
async function scriptedRunner(env: E2eEnv, id: string) {
  const { broker, storage } = env.platform.infra;
  const queue: Buffer[] = [];
  const starts: Array<MessagePayload<'train.start'>> = [];
  const publish = <T extends MessageType>(type: T, payload: MessagePayload<T>) =>
    broker.publish(STREAMS.telemetry, makeEnvelope(type, payload, { source: `gpu-runner/${id}` }));
  const beat = () =>
    publish('runner.heartbeat', {
      runnerId: id,
      backends: ['builtin'],
      device: { kind: 'cpu', name: 'scripted' },
    });
  await beat();
  const timer = setInterval(() => void beat(), 1000);
  const sub = await broker.subscribe(STREAMS.control, { from: 'first' }, async (e) => {
    if (e.type !== 'train.start') return;
    const p = e.payload as MessagePayload<'train.start'>;
    if (p.runnerId !== id || starts.some((s) => s.jobId === p.jobId)) return;
    starts.push(p);
    const onnx = queue.shift();
    const base = { jobId: p.jobId, attempt: p.attempt, runnerId: id };
    if (onnx === undefined) {
      await publish('train.status', { ...base, status: 'failed', message: 'no detector queued by the test' });
      return;
    }
    await publish('train.status', { ...base, status: 'running' });
    const artifacts = [];
    for (const [name, bytes] of [
      ['model.onnx', onnx],
      ['best.pt', Buffer.from(`checkpoint of ${p.jobId} ${randomBytes(4).toString('hex')}`)],
    ] as const) {
      const put = await storage.put(p.uploads[name]!.key, bytes);
      artifacts.push({ name, key: put.key, sha256: put.sha256, size: put.size });
    }
    await publish('artifact.ready', {
      ...base,
      artifacts,
      model: { layout: 'ultralytics', inputSize: 64, classNames: NAMES },
      metrics: { mAP50: 0.5 },
      codeVersion: 'scripted',
    });
    await publish('train.status', { ...base, status: 'succeeded' });
  });
  return {
    queue,
    starts,
    async stop() {
      clearInterval(timer);
      await sub.close();
    },
  };
}

describe.skipIf(pythonMissing)(
  'retrain policy → one plan → approvals → promoted and rolled out only if better',
  () => {
    let env: E2eEnv;
    let runner: Awaited<ReturnType<typeof scriptedRunner>>;
    let good: Buffer;
    let poor: Buffer;
    let poorer: Buffer;
    let mv1: ModelVersion;
    let olivia: CallContext;

    beforeAll(async () => {
      env = await startE2ePlatform({
        gpuRunner: false,
        env: { ROLLOUT_OBSERVE_S: '2', ROLLOUT_MIN_HEARTBEATS: '2', ROLLOUT_HEALTH_TIMEOUT_S: '60' },
      });
      olivia = { ...env.ctx, user: approver, requestId: 'olivia' };
      const dir = path.join(env.root, 'datasets', 'centre');
      await writeCentreDataset(dir);
      await env.platform.datasets.import(env.ctx, { name: 'centre', source: { kind: 'folder', path: dir } });
      good = (await buildTestDetector({ names: NAMES, detections: [{ ...CENTRE, score: 0.9 }] })).bytes;
      poor = (
        await buildTestDetector({
          names: NAMES,
          detections: [{ cx: 8, cy: 8, w: 8, h: 8, cls: 0, score: 0.5 }],
        })
      ).bytes;
      poorer = (
        await buildTestDetector({
          names: NAMES,
          detections: [{ cx: 56, cy: 56, w: 8, h: 8, cls: 1, score: 0.55 }],
        })
      ).bytes;
      runner = await scriptedRunner(env, 'gpu-scripted');

      // production: a poor first version trained on centre@1, serving on line-3
      runner.queue.push(poor);
      const job = await env.platform.training.start(env.ctx, {
        dataset: 'centre',
        name: 'centre',
        config: { backend: 'builtin', model: 'builtin-n', epochs: 1, imgsz: 64, batch: 2 },
      });
      const done = await waitFor('the first training', async () => {
        const j = await env.platform.training.get(env.ctx, job.id);
        return j.modelVersionId !== null ? j : undefined;
      });
      mv1 = await env.platform.models.get(env.ctx, done.modelVersionId!);
      await env.platform.models.promote(env.ctx, mv1.ref, 'production');
      for (const id of LINE3) {
        await startDevice(env, {
          id,
          tags: ['line-r'],
          frames: path.join(dir, 'images', 'test'),
          uncertainBand: [0.001, 1],
          feedback: { perMinute: 30, perHour: 100 },
        });
      }
      await waitOnline(env, 'line-r', LINE3);
      const r = await env.platform.rollouts.start(env.ctx, { model: mv1.ref, target: { tag: 'line-r' } });
      expect((await waitRollout(env, r.id)).state).toBe('completed');
      await env.platform.feedback.setPolicy(env.ctx, 'centre', {
        minAcceptedSamples: 2,
        minImprovement: 0.2,
        cooldownHours: 0,
      });
    }, 240_000);

    afterAll(async () => {
      await runner?.stop();
      await env?.close();
    }, 60_000);

    /** Accepts two pending samples (boxes at the centre), lets the policy fire, and returns the conversation it started. */
    async function acceptFeedbackAndPropose(): Promise<string> {
      const { platform, ctx } = env;
      const pending = await waitFor('two pending feedback samples', async () => {
        const q = await platform.feedback.list(ctx, { status: 'pending', limit: 10 });
        return q.items.length >= 2 ? q.items : undefined;
      });
      for (const s of pending.slice(0, 2)) {
        await platform.feedback.review(olivia, s.id, {
          decision: 'accept',
          boxes: [{ className: 'helmet', x1: 0.35, y1: 0.35, x2: 0.65, y2: 0.65 }],
        });
      }
      const before = new Set((await platform.agent.listThreads(ctx)).map((t) => t.id));
      const [proposal] = await platform.feedback.evaluatePolicies(ctx);
      expect(proposal).toMatchObject({ model: 'centre', trigger: 'min_accepted_samples' });
      const thread = await waitFor('the conversation of the proposal', async () =>
        (await platform.agent.listThreads(ctx)).find(
          (t) => !before.has(t.id) && t.title.startsWith('Retrain centre'),
        ),
      );
      return thread.id;
    }

    /** Approves every step the conversation asks for until it ends; returns the tools approved, in order. */
    async function approveAll(threadId: string) {
      const approved: string[] = [];
      for (;;) {
        const view = await waitFor(
          `conversation ${threadId} to ask or end`,
          async () => {
            const v = await env.platform.agent.getThread(env.ctx, threadId);
            return ['awaiting_approval', 'done', 'stopped', 'failed'].includes(v.status) ? v : undefined;
          },
          120_000,
          300,
        );
        if (view.status !== 'awaiting_approval') return { view, approved };
        const p = view.pendingApproval!;
        approved.push(p.tool);
        await env.platform.agent.decide(olivia, threadId, { approvalId: p.approvalId, decision: 'approve' });
      }
    }

    it('stops after the gate when the fine-tuned version is not better: nothing promoted, nothing rolled out, and says why', async () => {
      const { platform, ctx } = env;
      runner.queue.push(poorer);
      const threadId = await acceptFeedbackAndPropose();

      // the one plan is shown whole; nothing ran before its first approval
      const first = await platform.agent.getThread(ctx, threadId);
      expect(first.plan!.steps.map((s) => s.tool)).toEqual([
        'feedback_to_dataset',
        'start_training',
        'evaluate_model',
        'evaluate_model',
        'check_promotion_gate',
        'promote_model',
        'start_rollout',
      ]);
      expect(first.pendingApproval).toMatchObject({ tool: 'feedback_to_dataset' });
      expect((await platform.datasets.get(ctx, 'centre')).ref).toBe('centre@1');
      expect(first.plan!.steps[6]!.args).toEqual({
        modelVersion: '$steps.1.result.modelRef',
        target: { devices: LINE3 },
      });

      const rolloutsBefore = (await platform.rollouts.list(ctx)).length;
      const { view, approved } = await approveAll(threadId);
      expect(approved).toEqual(['feedback_to_dataset', 'start_training', 'evaluate_model', 'evaluate_model']);
      expect(view.status).toBe('stopped');
      expect(view.steps.map((s) => s.state)).toEqual([
        'done',
        'done',
        'done',
        'done',
        'done',
        'skipped',
        'skipped',
      ]);
      const gate = view.steps[4]!.output as {
        better: boolean;
        candidateMAP50: number;
        baselineMAP50: number;
      };
      expect(gate).toMatchObject({ better: false, candidateMAP50: 0, baselineMAP50: 0 });
      expect(view.report).toMatch(/centre@2 is not better/);
      expect(view.report).toMatch(/not promoted and nothing is rolled out/);

      // fine-tuned from production's checkpoint, on the new dataset version with the feedback
      const start = runner.starts.at(-1)!;
      expect(start.dataset).toMatchObject({ name: 'centre', version: 2 });
      const ckpt = mv1.artifacts.find((a) => a.name === 'best.pt')!;
      expect(start.init).toMatchObject({ ref: mv1.ref, sha256: ckpt.sha256 });

      expect((await platform.models.get(ctx, 'centre@production')).id).toBe(mv1.id);
      expect(await platform.rollouts.list(ctx)).toHaveLength(rolloutsBefore);
      for (const id of LINE3) expect(env.devices.get(id)!.current?.versionId).toBe(mv1.id);
    }, 240_000);

    it('promotes the better fine-tuned version and rolls it out to the same devices, each step approved', async () => {
      const { platform, ctx } = env;
      runner.queue.push(good);
      const threadId = await acceptFeedbackAndPropose();
      const { view, approved } = await approveAll(threadId);
      expect(approved).toEqual([
        'feedback_to_dataset',
        'start_training',
        'evaluate_model',
        'evaluate_model',
        'promote_model',
        'start_rollout',
      ]);
      expect(view.status, view.report ?? '').toBe('done');
      const gate = view.steps[4]!.output as { better: boolean; candidateMAP50: number; improvement: number };
      expect(gate.better).toBe(true);
      expect(gate.candidateMAP50).toBeGreaterThan(0.9);

      const candidate = await platform.models.get(ctx, 'centre@production');
      expect(candidate.ref).toBe('centre@3');
      expect(candidate.lineage).toMatchObject({ datasetName: 'centre', datasetVersion: 3 });
      // both were scored on the fixed test set: the dataset version production was trained on
      expect((view.steps[2]!.output as { dataset: string }).dataset).toBe('centre@1');
      const rolloutId = (view.steps[6]!.output as { rolloutId: string }).rolloutId;
      const deployed = payloads(env.control, 'deploy.apply', (p) => p.rolloutId === rolloutId).map(
        (p) => p.deviceId,
      );
      expect([...deployed].sort()).toEqual([...LINE3].sort());
      for (const id of LINE3) {
        await waitFor(
          `${id} to serve ${candidate.ref}`,
          () => env.devices.get(id)!.current?.versionId === candidate.id,
        );
      }
      expect(createHash('sha256').update(good).digest('hex')).toBe(candidate.model.sha256);
    }, 240_000);
  },
);
