import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../core/errors.js';
import {
  computeLetterbox,
  decodeImage,
  hwcToChw,
  letterbox,
  letterboxToTensor,
  LetterboxTensorizer,
  unletterbox,
  type RawImage,
} from './letterbox.js';

function gradientFrame(width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = Math.round((x / width) * 255);
      data[o + 1] = Math.round((y / height) * 255);
      data[o + 2] = 60;
    }
  }
  return { data, width, height, channels: 3 };
}

describe('letterbox', () => {
  it('computes scale and centred padding and maps boxes back', () => {
    // 1280x720 into 640: scale 0.5, content 640x360, vertical padding (640-360)/2 = 140.
    const meta = computeLetterbox(1280, 720, 640);
    expect(meta).toMatchObject({ scale: 0.5, padX: 0, padY: 140 });
    // Input box [100,190,300,240] -> original [(100-0)/0.5, (190-140)/0.5, 600, (240-140)/0.5] = [200,100,600,200].
    expect(unletterbox([100, 190, 300, 240], meta)).toEqual([200, 100, 600, 200]);
    // Portrait 480x640 into 320: scale 0.5, content 240x320, padX 40; boxes in the padding clip to the image.
    const tall = computeLetterbox(480, 640, 320);
    expect(tall).toMatchObject({ scale: 0.5, padX: 40, padY: 0 });
    expect(unletterbox([0, 0, 30, 330], tall)).toEqual([0, 0, 0, 640]);
  });

  it('letterboxes an encoded image with sharp, padding with grey 114', async () => {
    const src = gradientFrame(200, 100);
    const png = await sharp(src.data, { raw: { width: 200, height: 100, channels: 3 } })
      .png()
      .toBuffer();
    const out = await letterbox(png, { width: 64 });
    expect(out.width).toBe(64);
    expect(out.data.length).toBe(64 * 64 * 3);
    // 200x100 into 64: scale 0.32, content 64x32, padY 16; row 0 is padding, row 32 is content.
    expect(out.meta).toMatchObject({ padX: 0, padY: 16 });
    expect([...out.data.subarray(0, 3)]).toEqual([114, 114, 114]);
    expect(out.data[(32 * 64 + 32) * 3 + 2]).toBeGreaterThan(50);
    expect(out.data[(32 * 64 + 32) * 3 + 2]).toBeLessThan(70);
    expect(out.tensor.length).toBe(3 * 64 * 64);
    expect(out.tensor[0]).toBeCloseTo(114 / 255, 6);
  });

  it('fused raw path agrees with the sharp path within a few grey levels', async () => {
    const frame = gradientFrame(1280, 720);
    const viaSharp = await letterbox(frame, { width: 320 });
    const fused = letterboxToTensor(frame, { width: 320 });
    expect(fused.meta).toEqual(viaSharp.meta);
    let sum = 0;
    for (let i = 0; i < fused.tensor.length; i++) sum += Math.abs(fused.tensor[i]! - viaSharp.tensor[i]!);
    expect((sum / fused.tensor.length) * 255).toBeLessThan(2);
  });

  it('supports BGR 0..255 (YOLOX), nearest sampling and RGBA frames, reusing its buffer', () => {
    const frame: RawImage = {
      data: new Uint8Array([10, 20, 30, 255, 40, 50, 60, 255]),
      width: 2,
      height: 1,
      channels: 4,
    };
    const t = new LetterboxTensorizer({
      width: 2,
      height: 2,
      order: 'bgr',
      normalise: false,
      sampling: 'nearest',
    });
    const { tensor, meta } = t.run(frame);
    // 2x1 into 2x2: scale 1, padY = floor((2-1)/2) = 0, so row 0 is the frame and row 1 is padding.
    expect(meta).toMatchObject({ scale: 1, padX: 0, padY: 0 });
    expect([...tensor]).toEqual([30, 60, 114, 114, 20, 50, 114, 114, 10, 40, 114, 114]);
    expect(t.run(frame).tensor).toBe(tensor);
    expect([...hwcToChw(new Uint8Array([255, 0, 51]), 1, 1)]).toEqual([1, 0, Math.fround(0.2)]);
  });

  it('rejects a raw frame whose byte length does not match its size', () => {
    const bad: RawImage = { data: new Uint8Array(10), width: 4, height: 4, channels: 3 };
    expect(() => letterboxToTensor(bad, { width: 8 })).toThrow(/needs 48/);
  });

  it('rejects bytes that are not an image', async () => {
    const err = await decodeImage(Buffer.from('definitely not a jpeg')).catch((e: unknown) => e);
    expect(isPlatformError(err, 'invalid_input')).toBe(true);
  });
});
