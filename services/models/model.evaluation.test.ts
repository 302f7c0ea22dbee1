import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallContext } from '../../core/context.js';
import { testContext } from '../datasets/datasets.fixtures.js';
import { isPlatformError } from '../../core/errors.js';
import type { ModelEvent } from './events.js';
import { ModelEvaluationService } from './model.evaluation.js';
import type { ModelVersion } from './model.js';
import { HELMET_AP, makeEvaluationFixture, type RegisterOptions } from './models.fixtures.js';

// The fixture's detector, images and the hand computation of the expected numbers are described in models.fixtures.ts.
describe(ModelEvaluationService.name, () => {
  let f: Awaited<ReturnType<typeof makeEvaluationFixture>>;
  let sut: ModelEvaluationService;
  let events: ModelEvent[];
  let onnx: Buffer;
  let ctx: CallContext;
  const register = (opts: RegisterOptions = {}): Promise<ModelVersion> => f.register(opts);

  beforeAll(async () => {
    f = await makeEvaluationFixture();
    ({ sut, events, onnx, ctx } = f);
  }, 90_000);

  afterAll(async () => {
    await f?.cleanup();
  });

  it('evaluates a version on the test split of its lineage dataset with the real pipeline and COCO mAP', async () => {
    const v = await register({});
    events.length = 0;
    const progress: Array<[number, number]> = [];
    const e = await sut.evaluate(ctx, { modelVersion: v.ref }, (p) => progress.push([p.done, p.total]));
    expect(e).toMatchObject({
      model: 'helmets@1',
      dataset: 'helmets-eval@1',
      split: 'test',
      images: 2,
      imagesTotal: 2,
      conf: 0.25,
      modelSha256: v.model.sha256,
    });
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
    // PR curves at IoU 0.5: helmet reads precision 1 up to recall 2/3 (67 points) and 0 past it;
    // head reaches recall 1 at precision 1 before any false positive.
    expect(e.perClass[0]!.pr50).toEqual([...new Array(67).fill(1), ...new Array(34).fill(0)]);
    expect(e.perClass[1]!.pr50).toEqual(new Array(101).fill(1));
    // At conf 0.25, IoU 0.5: D1 finds both first helmets, D2 both heads, D3 (twice) finds nothing,
    // and the third helmet of T2 is missed.
    expect(e.confusion).toEqual({
      classes: ['helmet', 'head'],
      counts: [
        [2, 0, 1],
        [0, 2, 0],
        [2, 0, 0],
      ],
    });
    expect(e.timing.totalMs).toBeGreaterThan(0);
    expect(e.timing.totalMs).toBeGreaterThanOrEqual(e.timing.inferenceMs);
    expect(e.finishedAt).toBeGreaterThanOrEqual(e.startedAt);
    expect(progress).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
    expect(events.filter((x) => x.type === 'model.evaluation_progress').at(-1)).toMatchObject({
      done: 2,
      total: 2,
      model: 'helmets@1',
    });
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
    expect(train.perClass.find((c) => c.className === 'head')).toMatchObject({
      instances: 0,
      ap50: null,
      ap50_95: null,
    });
    // One image of the test split, in the stable order listImages gives.
    const first = (await f.datasets.listImages(ctx, 'helmets-eval@1', { split: 'test', limit: 1 })).items[0]!;
    const capped = await sut.evaluate(ctx, { modelVersion: v.id, maxImages: 1 });
    expect([capped.images, capped.imagesTotal, capped.settings.maxImages]).toEqual([1, 2, 1]);
    // T1 (2 boxes): helmet 1 GT found first -> AP 1; T2 (3 boxes): 2 GT, one found -> AP 51/101.
    expect(capped.metrics.mAP50).toBeCloseTo(first.boxes.length === 2 ? 1 : (51 / 101 + 1) / 2, 10);
    expect((await sut.list(ctx, v.ref)).map((x) => x.id)).toEqual([capped.id, train.id]);
    await expect(sut.evaluate(ctx, { modelVersion: v.id, maxImages: 100_000 })).rejects.toSatisfy(
      (err) => isPlatformError(err, 'invalid_input') && /above the limit of 5000/.test(err.message),
    );
  });

  it('refuses a dataset whose classes the model does not detect, and an ONNX whose class names disagree with the registry', async () => {
    const v = await register({});
    await expect(sut.evaluate(ctx, { modelVersion: v.id, dataset: 'vests@1' })).rejects.toSatisfy(
      (err) =>
        isPlatformError(err, 'invalid_input') &&
        /class names do not match: dataset vests@1 has "vest", which model helmets@\d+ does not detect/.test(
          err.message,
        ) &&
        /model classes: helmet, head/.test(err.message),
    );
    const swapped = await register({ name: 'swapped', classNames: ['head', 'helmet'] });
    await expect(sut.evaluate(ctx, { modelVersion: swapped.id })).rejects.toSatisfy(
      (err) =>
        isPlatformError(err, 'invalid_input') &&
        /ONNX metadata of swapped@1 says helmet, head but the registry says head, helmet/.test(err.message),
    );
    expect(await sut.list(ctx, swapped.id)).toEqual([]);
  });

  it('evaluates on a dataset with a subset of the model classes, matched by name, leaving the other classes out', async () => {
    const v = await register({});
    // heads@1 has one class, "Head" (id 0), the model's class 1; D2 finds its one box, the helmet detections are not scored.
    const e = await sut.evaluate(ctx, { modelVersion: v.id, dataset: 'heads' });
    expect(e).toMatchObject({ dataset: 'heads@1', images: 1, settings: { ignoredModelClasses: ['helmet'] } });
    expect(e.perClass.map((c) => [c.className, c.instances, c.detections])).toEqual([['Head', 1, 2]]);
    expect(e.metrics.mAP50).toBeCloseTo(1, 10);
    expect(e.metrics.mAP50_95).toBeCloseTo(0.6, 10);
    expect([e.metrics.precision, e.metrics.recall]).toEqual([1, 1]);
  });

  it('refuses a missing artifact and one whose sha256 differs from the registry', async () => {
    const missing = await register({ name: 'gone', key: 'models/never-uploaded.onnx' });
    await expect(sut.evaluate(ctx, { modelVersion: missing.id })).rejects.toSatisfy(
      (err) =>
        isPlatformError(err, 'not_found') &&
        /model file of gone@1 \(models\/never-uploaded\.onnx\) is missing from storage/.test(err.message),
    );
    const key = 'models/tampered.onnx';
    await f.storage.put(key, Buffer.concat([onnx, Buffer.from('x')]));
    const tampered = await register({
      name: 'tampered',
      key,
      sha256: createHash('sha256').update(onnx).digest('hex'),
    });
    await expect(sut.evaluate(ctx, { modelVersion: tampered.id })).rejects.toSatisfy(
      (err) =>
        isPlatformError(err, 'conflict') &&
        /sha256 mismatch/.test(err.message) &&
        /not evaluated/.test(err.message),
    );
    expect(await sut.list(ctx, tampered.id)).toEqual([]);
  });

  it('says when the split is empty or the model is unknown, and needs the operator role', async () => {
    const v = await register({});
    await expect(sut.evaluate(ctx, { modelVersion: v.id, split: 'val' })).rejects.toSatisfy(
      (err) =>
        isPlatformError(err, 'invalid_input') &&
        /helmets-eval@1 has no images in its val split \(train 1, val 0, test 2\)/.test(err.message),
    );
    const viewer: CallContext = testContext('default', 'viewer');
    await expect(sut.evaluate(viewer, { modelVersion: v.id })).rejects.toSatisfy((err) =>
      isPlatformError(err, 'forbidden'),
    );
    expect(await sut.list(viewer, v.id)).toEqual([]);
    await expect(sut.evaluate(ctx, { modelVersion: 'nope@1' })).rejects.toSatisfy(
      (err) => isPlatformError(err, 'not_found') && /known models/.test(err.message),
    );
  });
});
