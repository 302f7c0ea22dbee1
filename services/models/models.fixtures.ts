import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { buildFixedOutputModel } from '../../vision/onnx.fixtures.js';
import { makeService, testContext, writeTree } from '../datasets/datasets.fixtures.js';
import { EventBus } from '../../core/events.js';
import type { Db } from '../infra/db/port.js';
import type { Storage } from '../infra/storage/port.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import type { ModelEvent } from './events.js';
import { ModelEvaluationService } from './model.evaluation.js';
import { ModelRegistry } from './model.registry.js';
import { type ModelVersion } from './model.js';

// A fixed-output detector at 64x64 (scale 1, no padding on 64x64 images), Ultralytics layout
// [1, 4+2, 84] with four candidates (cx, cy, w, h, helmet score, head score):
//   D1 helmet 0.9 at [8,8,24,24]    D2 head 0.8 at [40,10,56,26] (IoU 0.778 with the head boxes below)
//   D3 helmet 0.4 at [8,40,24,56]   D4 head 0.1 at [40,40,56,56] (below the 0.25 operating threshold)
// Test split: T1 = helmet [8,8,24,24] + head [40,8,56,24]; T2 = the same two plus a helmet at
// [24,24,40,40] that nothing detects. Train split: one helmet at [8,40,24,56].
//
// Hand-computed on the test split:
//   helmet: 3 GT; by score TP, TP (D1 in T1, T2), FP, FP (D3) -> recall reaches 2/3 at precision 1:
//           AP = 67/101 at every IoU threshold (D1 is exact).
//   head:   2 GT; D2 TP twice at IoU 0.50..0.75 (6 of 10 thresholds), FP above -> AP50 = 1, AP50-95 = 0.6.
//   mAP50 = (67/101 + 1) / 2, mAP50-95 = (67/101 + 0.6) / 2.
//   At conf 0.25: TP 4 (D1 x2, D2 x2), FP 2 (D3 x2), GT 5 -> precision 4/6, recall 4/5;
//   helmet P 2/4 R 2/3, head P 2/2 R 2/2.
const N = 84;
const CANDIDATES = [
  [16, 16, 16, 16, 0.9, 0],
  [48, 18, 16, 16, 0, 0.8],
  [16, 48, 16, 16, 0.4, 0],
  [48, 48, 16, 16, 0, 0.1],
];
/** Hand-computed helmet AP on the test split of the fixture. */
export const HELMET_AP = 67 / 101;

function yolo(boxes: Array<[number, number, number, number, number]>): string {
  return (
    boxes
      .map(
        ([c, x1, y1, x2, y2]) =>
          `${c} ${(x1 + x2) / 128} ${(y1 + y2) / 128} ${(x2 - x1) / 64} ${(y2 - y1) / 64}`,
      )
      .join('\n') + '\n'
  );
}

/** A 64x64 PNG of one flat colour (seeded), the size the fixture detector expects. */
export const png = (seed: number) =>
  sharp({
    create: { width: 64, height: 64, channels: 3, background: { r: seed * 40, g: 90, b: 200 - seed * 30 } },
  })
    .png()
    .toBuffer();

/** Builds the fixed-output detector described above (python3 + onnx) in `dir` and returns its bytes. */
export async function buildFixtureDetector(dir: string): Promise<Buffer> {
  const out = new Float32Array(6 * N);
  CANDIDATES.forEach((c, i) => c.forEach((v, r) => (out[r * N + i] = v)));
  const built = await buildFixedOutputModel(
    {
      inputShape: [1, 3, 64, 64],
      outputShape: [1, 6, N],
      output: out,
      metadata: { names: "{0: 'helmet', 1: 'head'}", imgsz: '[64, 64]' },
    },
    dir,
  );
  return built.bytes;
}

/** Writes the YOLO folder of `helmets-eval` described above (test: t1, t2; train: a) into `dir`. */
export async function writeFixtureDataset(dir: string): Promise<void> {
  await writeTree(dir, {
    'data.yaml': 'names: [helmet, head]\ntrain: images/train\nval: images/val\ntest: images/test\n',
    'images/test/t1.png': await png(1),
    'labels/test/t1.txt': yolo([
      [0, 8, 8, 24, 24],
      [1, 40, 8, 56, 24],
    ]),
    'images/test/t2.png': await png(2),
    'labels/test/t2.txt': yolo([
      [0, 8, 8, 24, 24],
      [0, 24, 24, 40, 40],
      [1, 40, 8, 56, 24],
    ]),
    'images/train/a.png': await png(3),
    'labels/train/a.txt': yolo([[0, 8, 40, 24, 56]]),
  });
}

/** Registers a version of the fixture detector in `registry` (uploading it to `storage` unless `key` is given). */
export async function registerFixtureModel(
  registry: ModelRegistry,
  storage: Storage,
  onnx: Buffer,
  jobId: string,
  opts: RegisterOptions = {},
  projectId = 'default',
): Promise<ModelVersion> {
  const bytes = opts.bytes ?? onnx;
  const key = opts.key ?? `models/${createHash('sha256').update(bytes).digest('hex')}.onnx`;
  if (opts.key === undefined) await storage.put(key, bytes);
  const { version } = await registry.registerFromArtifact({
    projectId,
    name: opts.name ?? 'helmets',
    job: {
      id: jobId,
      attempt: 1,
      runnerId: 'gpu-1',
      config: { backend: 'builtin', model: 'tiny', epochs: 1, imgsz: 64, batch: 2 },
      dataset: opts.dataset ?? { name: 'helmets-eval', version: 1 },
    },
    artifact: {
      jobId,
      attempt: 1,
      runnerId: 'gpu-1',
      artifacts: [
        {
          name: 'model.onnx',
          key,
          sha256: opts.sha256 ?? createHash('sha256').update(bytes).digest('hex'),
          size: bytes.length,
        },
      ],
      model: { layout: 'ultralytics', inputSize: 64, classNames: opts.classNames ?? ['helmet', 'head'] },
      metrics: { mAP50: 0.5 },
    },
    createdBy: 'u-operator',
  });
  return version;
}

/** Options of `EvaluationFixture.register`: what to register and where its bytes are. */
export interface RegisterOptions {
  name?: string;
  classNames?: string[];
  /** A storage key to point at without uploading (missing or tampered artifacts). */
  key?: string;
  sha256?: string;
  dataset?: { name: string; version: number };
  bytes?: Buffer;
}

/**
 * A datasets service with `helmets-eval@1` (test: 2 images, train: 1), `vests@1` (a class the model
 * lacks) and `heads@1` (only the model's second class, spelt `Head`), a registry, an
 * evaluation service and the fixed-output detector described above, on SQLite (or `db`, which the
 * fixture then does not close) and a local folder.
 */
export async function makeEvaluationFixture(opts: { db?: Db } = {}) {
  const work = await mkdtemp(path.join(tmpdir(), 'via-eval-'));
  const db = opts.db ?? new SqliteDb({ file: path.join(work, 'eval.db') });
  await db.migrate();
  const env = await makeService(db);
  const ctx = testContext('default', 'operator');
  const onnx = await buildFixtureDetector(work);
  const dir = path.join(work, 'ds');
  await writeFixtureDataset(dir);
  await env.sut.import(ctx, { name: 'helmets-eval', source: { kind: 'folder', path: dir } });
  const vests = path.join(work, 'vests');
  await writeTree(vests, {
    'data.yaml': 'names: [helmet, vest]\n',
    'images/test/v.png': await png(4),
    'labels/test/v.txt': yolo([[1, 8, 8, 24, 24]]),
  });
  await env.sut.import(ctx, { name: 'vests', source: { kind: 'folder', path: vests } });
  const heads = path.join(work, 'heads');
  await writeTree(heads, {
    'data.yaml': 'names: [Head]\n',
    'images/test/h.png': await png(5),
    'labels/test/h.txt': yolo([[0, 40, 8, 56, 24]]),
  });
  await env.sut.import(ctx, { name: 'heads', source: { kind: 'folder', path: heads } });
  const bus = new EventBus<ModelEvent>();
  const events: ModelEvent[] = [];
  bus.on((e) => events.push(e));
  const registry = new ModelRegistry({ db, events: bus, log: silentLogger() });
  const sut = new ModelEvaluationService({
    db,
    storage: env.storage,
    models: registry,
    datasets: env.sut,
    events: bus,
    log: silentLogger(),
  });
  let jobs = 0;

  /** Registers a version of the fixture detector (uploading it unless `key` is given). */
  const register = (o: RegisterOptions = {}): Promise<ModelVersion> =>
    registerFixtureModel(registry, env.storage, onnx, `job_${++jobs}`, o);

  return {
    db,
    datasets: env.sut,
    storage: env.storage,
    registry,
    sut,
    events,
    onnx,
    ctx,
    register,
    cleanup: async () => {
      await env.cleanup();
      if (opts.db === undefined) await db.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}
