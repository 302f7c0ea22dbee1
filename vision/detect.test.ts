import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPlatformError } from '../core/errors.js';
import { COCO_NAMES } from './coco-names.js';
import { detectOptionsSchema, loadClassNames, runDetectCommand } from './detect.js';
import { buildFixedOutputModel } from './onnx.fixtures.js';

let dir: string;
let modelPath: string;
let imagePath: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vision-detect-'));
  const n = 2100;
  const u = new Float32Array(7 * n);
  // One helmet at input [50,90,150,140] -> original [100,100,300,200] for a 640x480 image (scale 0.5, padY 40).
  [100, 115, 100, 50, 0.9, 0, 0].forEach((v, r) => (u[r * n] = v));
  modelPath = (
    await buildFixedOutputModel(
      {
        inputShape: [1, 3, 320, 320],
        outputShape: [1, 7, n],
        output: u,
        metadata: { names: "{0: 'helmet', 1: 'head', 2: 'vest'}" },
      },
      dir,
    )
  ).path;
  imagePath = path.join(dir, 'frame.jpg');
  await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 20, g: 20, b: 20 } } })
    .jpeg()
    .toFile(imagePath);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runDetectCommand', () => {
  it('prints detections and shapes, and draws them into a PNG', async () => {
    const out = path.join(dir, 'annotated.png');
    const r = await runDetectCommand({ model: modelPath, image: imagePath, out, conf: '0.3' });
    expect(r.layout).toBe('ultralytics');
    expect(r.shapes).toEqual({ input: [1, 3, 320, 320], outputs: { output0: [1, 7, 2100] } });
    expect(r.image).toEqual({ width: 640, height: 480 });
    expect(r.detections).toHaveLength(1);
    expect(r.detections[0]!.className).toBe('helmet');
    expect(r.detections[0]!.box.map(Math.round)).toEqual([100, 100, 300, 200]);
    expect(r.annotated).toBe(out);
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([640, 480]);
    // The box's left edge at x=100 is drawn in colour; the image centre far from any box keeps its dark grey.
    const at = (x: number, y: number): number[] => [
      ...data.subarray((y * 640 + x) * info.channels, (y * 640 + x) * info.channels + 3),
    ];
    expect(Math.max(...at(100, 150))).toBeGreaterThan(120);
    expect(Math.max(...at(500, 400))).toBeLessThan(40);
  });

  it('uses --names coco or a names file', async () => {
    const coco = await runDetectCommand({ model: modelPath, image: imagePath, names: 'coco' });
    expect(coco.detections[0]!.className).toBe('person');
    const file = path.join(dir, 'names.txt');
    await writeFile(file, 'hard hat\nbare head\nhi-vis\n');
    const fromFile = await runDetectCommand({ model: modelPath, image: imagePath, names: file });
    expect(fromFile.detections[0]!.className).toBe('hard hat');
    expect(fromFile.names).toEqual(['hard hat', 'bare head', 'hi-vis']);
  });

  it('reads names from JSON and data.yaml files', async () => {
    const json = path.join(dir, 'names.json');
    await writeFile(json, '{"0": "a", "1": "b"}');
    expect(await loadClassNames(json)).toEqual(['a', 'b']);
    const yaml = path.join(dir, 'data.yaml');
    await writeFile(yaml, 'path: x\nnames:\n  0: helmet\n  1: head\n');
    expect(await loadClassNames(yaml)).toEqual(['helmet', 'head']);
    expect(await loadClassNames('COCO')).toEqual([...COCO_NAMES]);
    expect(COCO_NAMES).toHaveLength(80);
  });

  it('fails with clear errors on bad options, missing files and corrupt images', async () => {
    const bad = await runDetectCommand({ model: modelPath, image: imagePath, conf: 2 }).catch(
      (e: unknown) => e,
    );
    expect(isPlatformError(bad, 'invalid_input')).toBe(true);
    expect((bad as Error).message).toMatch(/conf/);
    const missing = await runDetectCommand({ model: modelPath, image: path.join(dir, 'none.jpg') }).catch(
      (e: unknown) => e,
    );
    expect(isPlatformError(missing, 'not_found')).toBe(true);
    const corrupt = path.join(dir, 'corrupt.jpg');
    await writeFile(corrupt, Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01, 0x02]));
    const broken = await runDetectCommand({ model: modelPath, image: corrupt }).catch((e: unknown) => e);
    expect(isPlatformError(broken, 'invalid_input')).toBe(true);
    const notModel = await runDetectCommand({ model: imagePath, image: imagePath }).catch((e: unknown) => e);
    expect((notModel as Error).message).toMatch(/not an ONNX model/);
    expect(detectOptionsSchema.parse({ model: 'm', image: 'i' })).toMatchObject({
      layout: 'auto',
      conf: 0.25,
      iou: 0.45,
      maxDet: 300,
    });
  });
});
