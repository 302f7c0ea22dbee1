import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixedOutputModel } from '../../vision/onnx-fixture.js';
import type { CallContext } from '../context.js';
import { makeService, testContext, writeTree } from '../datasets/test-support.js';
import { isPlatformError } from '../errors.js';
import { EventBus } from '../events.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { silentLogger } from '../log.js';
import type { ModelEvent } from './events.js';
import { ModelEvaluationService } from './model.evaluation.js';
import { ModelRegistry } from './model.registry.js';

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
const HELMET_AP = 67 / 101;

function yolo(boxes: Array<[number, number, number, number, number]>): string {
  return boxes.map(([c, x1, y1, x2, y2]) => `${c} ${(x1 + x2) / 128} ${(y1 + y2) / 128} ${(x2 - x1) / 64} ${(y2 - y1) / 64}`).join('\n') + '\n';
}

const png = (seed: number) => sharp({ create: { width: 64, height: 64, channels: 3, background: { r: seed * 40, g: 90, b: 200 - seed * 30 } } }).png().toBuffer();

describe(ModelEvaluationService.name, () => {
  let work: string;
  let db: SqliteDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let registry: ModelRegistry;
  let sut: ModelEvaluationService;
  let events: ModelEvent[];
  let onnx: Buffer;
  let jobs = 0;
  const ctx = testContext('default', 'operator');

  async function register(opts: { name?: string; classNames?: string[]; key?: string; sha256?: string; dataset?: { name: string; version: number }; bytes?: Buffer }) {
    const bytes = opts.bytes ?? onnx;
    const key = opts.key ?? `models/${createHash('sha256').update(bytes).digest('hex')}.onnx`;
    if (opts.key === undefined) await env.storage.put(key, bytes);
    const jobId = `job_${++jobs}`;
    const { version } = await registry.registerFromArtifact({
      projectId: 'default',
      name: opts.name ?? 'helmets',
      job: { id: jobId, attempt: 1, runnerId: 'gpu-1', config: { backend: 'builtin', model: 'tiny', epochs: 1, imgsz: 64, batch: 2 }, dataset: opts.dataset ?? { name: 'helmets-eval', version: 1 } },
      artifact: {
        jobId,
        attempt: 1,
        runnerId: 'gpu-1',
        artifacts: [{ name: 'model.onnx', key, sha256: opts.sha256 ?? createHash('sha256').update(bytes).digest('hex'), size: bytes.length }],
        model: { layout: 'ultralytics', inputSize: 64, classNames: opts.classNames ?? ['helmet', 'head'] },
        metrics: { mAP50: 0.5 },
      },
      createdBy: 'u-operator',
    });
    return version;
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'via-eval-'));
    db = new SqliteDb({ file: path.join(work, 'eval.db') });
    await db.migrate();
    env = await makeService(db);
    const out = new Float32Array(6 * N);
    CANDIDATES.forEach((c, i) => c.forEach((v, r) => (out[r * N + i] = v)));
    onnx = (
      await buildFixedOutputModel(
        { inputShape: [1, 3, 64, 64], outputShape: [1, 6, N], output: out, metadata: { names: "{0: 'helmet', 1: 'head'}", imgsz: '[64, 64]' } },
        work,
      )
    ).bytes;
    const dir = path.join(work, 'ds');
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
    await env.sut.import(ctx, { name: 'helmets-eval', source: { kind: 'folder', path: dir } });
    const vests = path.join(work, 'vests');
    await writeTree(vests, { 'data.yaml': 'names: [helmet, vest]\n', 'images/test/v.png': await png(4), 'labels/test/v.txt': yolo([[1, 8, 8, 24, 24]]) });
    await env.sut.import(ctx, { name: 'vests', source: { kind: 'folder', path: vests } });
    const bus = new EventBus<ModelEvent>();
    events = [];
    bus.on((e) => events.push(e));
    registry = new ModelRegistry({ db, events: bus, log: silentLogger() });
    sut = new ModelEvaluationService({ db, storage: env.storage, models: registry, datasets: env.sut, events: bus, log: silentLogger() });
  }, 90_000);

  afterAll(async () => {
    await env?.cleanup();
    await db?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('evaluates a version on the test split of its lineage dataset with the real pipeline and COCO mAP', async () => {
    const v = await register({});
    events.length = 0;
    const progress: Array<[number, number]> = [];
    const e = await sut.evaluate(ctx, { modelVersion: v.ref }, (p) => progress.push([p.done, p.total]));
    expect(e).toMatchObject({ model: 'helmets@1', dataset: 'helmets-eval@1', split: 'test', images: 2, imagesTotal: 2, conf: 0.25, modelSha256: v.model.sha256 });
    expect(e.metrics.mAP50).toBeCloseTo((HELMET_AP + 1) / 2, 10);
    expect(e.metrics.mAP50_95).toBeCloseTo((HELMET_AP + 0.6) / 2, 10);
    expect(e.metrics.precision).toBeCloseTo(4 / 6, 10);
    expect(e.metrics.recall).toBeCloseTo(4 / 5, 10);
    expect(e.perClass.map((c) => [c.className, c.instances, c.detections])).toEqual([
      ['helmet', 3, 4],
      ['head', 2, 4],
    ]);
    expect(e.perClass[0]!.ap50).toBeCloseTo(HELMET_AP, 10);
    expect(e.perClass[0]!.ap50_95).toBeCloseTo(HELMET_AP, 10);
    expect(e.perClass[1]!.ap50).toBeCloseTo(1, 10);
    expect(e.perClass[1]!.ap50_95).toBeCloseTo(0.6, 10);
    expect([e.perClass[0]!.precision, e.perClass[0]!.recall]).toEqual([0.5, 2 / 3]);
    expect([e.perClass[1]!.precision, e.perClass[1]!.recall]).toEqual([1, 1]);
    expect(e.timing.totalMs).toBeGreaterThan(0);
    expect(e.timing.totalMs).toBeGreaterThanOrEqual(e.timing.inferenceMs);
    expect(e.finishedAt).toBeGreaterThanOrEqual(e.startedAt);
    expect(progress).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
    expect(events.filter((x) => x.type === 'model.evaluation_progress').at(-1)).toMatchObject({ done: 2, total: 2, model: 'helmets@1' });
    expect(events.filter((x) => x.type === 'model.evaluated')).toHaveLength(1);
    // Recorded as history of the version, and readable through any reference to it.
    const [stored] = await sut.list(ctx, 'helmets@latest');
    expect(stored).toEqual(e);
  });

  it('evaluates another split or dataset version when asked, caps the images, and keeps every run newest first', async () => {
    const v = await register({});
    // Train split: D1 is a false positive, D3 finds the one helmet -> AP 0.5 (head has no ground truth).
    const train = await sut.evaluate(ctx, { modelVersion: v.id, split: 'train', dataset: 'helmets-eval' });
    expect(train).toMatchObject({ dataset: 'helmets-eval@1', split: 'train', images: 1 });
    expect(train.metrics.mAP50).toBeCloseTo(0.5, 10);
    expect(train.perClass.find((c) => c.className === 'head')).toMatchObject({ instances: 0, ap50: null, ap50_95: null });
    // One image of the test split, in the stable order listImages gives.
    const first = (await env.sut.listImages(ctx, 'helmets-eval@1', { split: 'test', limit: 1 })).items[0]!;
    const capped = await sut.evaluate(ctx, { modelVersion: v.id, maxImages: 1 });
    expect([capped.images, capped.imagesTotal, capped.settings.maxImages]).toEqual([1, 2, 1]);
    // T1 (2 boxes): helmet 1 GT found first -> AP 1; T2 (3 boxes): 2 GT, one found -> AP 51/101.
    expect(capped.metrics.mAP50).toBeCloseTo(first.boxes.length === 2 ? 1 : (51 / 101 + 1) / 2, 10);
    expect((await sut.list(ctx, v.ref)).map((x) => x.id)).toEqual([capped.id, train.id]);
    await expect(sut.evaluate(ctx, { modelVersion: v.id, maxImages: 100_000 })).rejects.toSatisfy((err) => isPlatformError(err, 'invalid_input') && /above the limit of 5000/.test(err.message));
  });

  it('refuses a dataset whose classes the model does not detect, and an ONNX whose class names disagree with the registry', async () => {
    const v = await register({});
    await expect(sut.evaluate(ctx, { modelVersion: v.id, dataset: 'vests@1' })).rejects.toSatisfy(
      (err) => isPlatformError(err, 'invalid_input') && /class names do not match: dataset vests@1 has "vest", which model helmets@\d+ does not detect/.test(err.message) && /model classes: helmet, head/.test(err.message),
    );
    const swapped = await register({ name: 'swapped', classNames: ['head', 'helmet'] });
    await expect(sut.evaluate(ctx, { modelVersion: swapped.id })).rejects.toSatisfy(
      (err) => isPlatformError(err, 'invalid_input') && /ONNX metadata of swapped@1 says helmet, head but the registry says head, helmet/.test(err.message),
    );
    expect(await sut.list(ctx, swapped.id)).toEqual([]);
  });

  it('refuses a missing artifact and one whose sha256 differs from the registry', async () => {
    const missing = await register({ name: 'gone', key: 'models/never-uploaded.onnx' });
    await expect(sut.evaluate(ctx, { modelVersion: missing.id })).rejects.toSatisfy(
      (err) => isPlatformError(err, 'not_found') && /model file of gone@1 \(models\/never-uploaded\.onnx\) is missing from storage/.test(err.message),
    );
    const key = 'models/tampered.onnx';
    await env.storage.put(key, Buffer.concat([onnx, Buffer.from('x')]));
    const tampered = await register({ name: 'tampered', key, sha256: createHash('sha256').update(onnx).digest('hex') });
    await expect(sut.evaluate(ctx, { modelVersion: tampered.id })).rejects.toSatisfy(
      (err) => isPlatformError(err, 'conflict') && /sha256 mismatch/.test(err.message) && /not evaluated/.test(err.message),
    );
    expect(await sut.list(ctx, tampered.id)).toEqual([]);
  });

  it('says when the split is empty or the model is unknown, and needs the operator role', async () => {
    const v = await register({});
    await expect(sut.evaluate(ctx, { modelVersion: v.id, split: 'val' })).rejects.toSatisfy(
      (err) => isPlatformError(err, 'invalid_input') && /helmets-eval@1 has no images in its val split \(train 1, val 0, test 2\)/.test(err.message),
    );
    const viewer: CallContext = testContext('default', 'viewer');
    await expect(sut.evaluate(viewer, { modelVersion: v.id })).rejects.toSatisfy((err) => isPlatformError(err, 'forbidden'));
    expect(await sut.list(viewer, v.id)).toEqual([]);
    await expect(sut.evaluate(ctx, { modelVersion: 'nope@1' })).rejects.toSatisfy((err) => isPlatformError(err, 'not_found') && /known models/.test(err.message));
  });
});
