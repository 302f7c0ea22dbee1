import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch } from '../../gpu-runner/runner.fixtures.js';
import type { ModelVersion } from '../../services/models/index.js';
import { importSyntheticDataset, startE2ePlatform, trainModel, type E2eEnv } from './harness.js';

// A real model: the built-in PyTorch detector trained by the platform's GPU runner on a synthetic
// dataset, then evaluated by ModelEvaluationService through onnxruntime. The trainer scores the same
// test split itself (gpu-runner/builtin/evaluate.py, in PyTorch on its own preprocessing), so the two
// independent implementations must agree on the ground truth exactly and on the metrics closely.
const torchMissing = await skipWithoutTorch();

describe.skipIf(torchMissing)('evaluating a trained model, embedded', () => {
  let env: E2eEnv;
  let data: { ref: string };
  let mv: ModelVersion;

  beforeAll(async () => {
    env = await startE2ePlatform();
    data = await importSyntheticDataset(env, 'eval-e2e', { train: 48, val: 8, test: 16 });
    mv = await trainModel(env, data.ref, 'eval-e2e', 40);
  }, 300_000);

  afterAll(async () => {
    await env?.close();
  }, 60_000);

  it('evaluates the trained version on its test split and agrees with the trainer', async () => {
    const { platform, ctx } = env;
    const e = await platform.evaluations.evaluate(ctx, { modelVersion: mv.ref });
    expect(e).toMatchObject({
      model: mv.ref,
      dataset: data.ref,
      split: 'test',
      images: 16,
      imagesTotal: 16,
      modelSha256: mv.model.sha256,
    });
    // The same boxes of the same images, matched to the same classes.
    expect(e.perClass.map((c) => [c.className, c.instances])).toEqual(
      mv.classNames.map((c) => [c, mv.perClass[c]?.instances]),
    );
    // The model learnt something (so agreement means something), and both scorers see it alike.
    // Measured: mAP50 0.372 here vs 0.336 in PyTorch, mAP50-95 0.129 vs 0.127 (resizing differs).
    const trainer = mv.metrics as { mAP50: number; mAP50_95: number; precision: number; recall: number };
    expect(trainer.mAP50).toBeGreaterThan(0.15);
    const near = (ours: number, theirs: number, tolerance: number, what: string) =>
      expect(
        Math.abs(ours - theirs),
        `${what}: ${ours.toFixed(3)} here, ${theirs.toFixed(3)} by the trainer`,
      ).toBeLessThanOrEqual(tolerance);
    near(e.metrics.mAP50, trainer.mAP50, 0.1, 'mAP50');
    near(e.metrics.mAP50_95, trainer.mAP50_95, 0.05, 'mAP50-95');
    near(e.metrics.precision, trainer.precision, 0.15, 'precision at 0.25');
    near(e.metrics.recall, trainer.recall, 0.1, 'recall at 0.25');
    for (const c of e.perClass)
      near(c.ap50 ?? 0, mv.perClass[c.className]?.AP50 ?? 0, 0.15, `AP50 of ${c.className}`);
    expect(await platform.evaluations.list(ctx, mv.id)).toEqual([e]);
  }, 60_000);
});
