import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../datasets/datasets.fixtures.js';
import { ModelTryout } from './model.tryout.js';
import { makeEvaluationFixture, png } from './models.fixtures.js';

// The fixture detector always finds the same candidates on a 64x64 image (models.fixtures.ts):
// D1 helmet 0.9, D2 head 0.8, D3 helmet 0.4, D4 head 0.1.
describe(ModelTryout.name, () => {
  let f: Awaited<ReturnType<typeof makeEvaluationFixture>>;
  let sut: ModelTryout;

  beforeAll(async () => {
    f = await makeEvaluationFixture();
    sut = new ModelTryout({ storage: f.storage, models: f.registry, limits: { maxBytes: 64 * 1024 } });
  }, 90_000);

  afterAll(async () => {
    await f?.cleanup();
  });

  it('runs the version on the image and returns its boxes in image pixels, for a viewer', async () => {
    const v = await f.register({});
    const r = await sut.detect(testContext('default', 'viewer'), v.ref, await png(1));
    expect(r).toMatchObject({ model: v.ref, width: 64, height: 64, conf: 0.25 });
    expect(r.detections.map((d) => [d.className, d.score, d.box])).toEqual([
      ['helmet', 0.9, [8, 8, 24, 24]],
      ['head', 0.8, [40, 10, 56, 26]],
      ['helmet', 0.4, [8, 40, 24, 56]],
    ]);
    const strict = await sut.detect(f.ctx, v.ref, await png(1), { conf: 0.5 });
    expect(strict.detections.map((d) => d.className)).toEqual(['helmet', 'head']);
  });

  it("refuses another project's version, bad images, oversized images and bad options with clear errors", async () => {
    const v = await f.register({});
    await expect(sut.detect(testContext('other'), v.ref, await png(1))).rejects.toMatchObject({
      code: 'not_found',
    });
    await expect(sut.detect(f.ctx, v.ref, Buffer.from('not an image'))).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/JPEG, PNG or WebP/),
    });
    await expect(sut.detect(f.ctx, v.ref, Buffer.alloc(0))).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(sut.detect(f.ctx, v.ref, Buffer.alloc(65 * 1024))).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/over the limit of 0\.1 MB/),
    });
    await expect(sut.detect(f.ctx, v.ref, await png(1), { conf: 2 })).rejects.toMatchObject({
      code: 'invalid_input',
    });
  });

  it('refuses a version whose stored file does not match its sha256', async () => {
    const v = await f.register({ sha256: 'f'.repeat(64) });
    await expect(sut.detect(f.ctx, v.ref, await png(1))).rejects.toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/sha256 mismatch.*not run/),
    });
  });
});
