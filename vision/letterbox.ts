import sharp from 'sharp';
import { PlatformError } from '../core/errors.js';
import type { Box } from './boxes.js';

/** A raw interleaved 8-bit frame (RGB, or RGBA whose alpha is ignored), row-major, no row padding. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
}

/** How a letterboxed image relates to the original: `input = original * scale + pad`. */
export interface LetterboxMeta {
  scale: number;
  padX: number;
  padY: number;
  srcWidth: number;
  srcHeight: number;
  width: number;
  height: number;
}

/** Channel order and value range the model expects: Ultralytics wants RGB 0..1, YOLOX wants BGR 0..255. */
export interface TensorFormat {
  order?: 'rgb' | 'bgr';
  normalise?: boolean;
}

/** Options shared by both letterbox paths. */
export interface LetterboxOptions extends TensorFormat {
  width: number;
  height?: number;
  /** Grey level of the padding (0..255); 114 as Ultralytics and YOLOX use. */
  color?: number;
  /** Sampling of the fused raw path; bilinear is the default. */
  sampling?: 'bilinear' | 'nearest';
}

/** Scale and padding that fit `srcWidth x srcHeight` into `width x height` keeping the aspect ratio, centred. */
export function computeLetterbox(
  srcWidth: number,
  srcHeight: number,
  width: number,
  height: number = width,
): LetterboxMeta {
  if (!(srcWidth > 0 && srcHeight > 0 && width > 0 && height > 0)) {
    throw new PlatformError(
      'invalid_input',
      `cannot letterbox a ${srcWidth}x${srcHeight} image into ${width}x${height}; both sizes must be positive`,
    );
  }
  const scale = Math.min(width / srcWidth, height / srcHeight);
  const nw = Math.min(width, Math.max(1, Math.round(srcWidth * scale)));
  const nh = Math.min(height, Math.max(1, Math.round(srcHeight * scale)));
  return {
    scale,
    padX: Math.floor((width - nw) / 2),
    padY: Math.floor((height - nh) / 2),
    srcWidth,
    srcHeight,
    width,
    height,
  };
}

/** Maps a box from letterboxed input pixels back to original image pixels, clipped to the original. */
export function unletterbox(box: Readonly<Box>, meta: LetterboxMeta): Box {
  const { scale, padX, padY, srcWidth, srcHeight } = meta;
  const clampX = (v: number): number => Math.min(Math.max(v, 0), srcWidth);
  const clampY = (v: number): number => Math.min(Math.max(v, 0), srcHeight);
  return [
    clampX((box[0] - padX) / scale),
    clampY((box[1] - padY) / scale),
    clampX((box[2] - padX) / scale),
    clampY((box[3] - padY) / scale),
  ];
}

/**
 * Largest image (width x height) `decodeImage` decodes unless told otherwise: 40 megapixels, above an
 * 8K frame (33 MP). A decoded pixel costs 3 bytes, and a few kilobytes of PNG can declare gigapixels.
 */
export const DEFAULT_MAX_IMAGE_PIXELS = 40_000_000;

/** Options of `decodeImage`. */
export interface ImageDecodeOptions {
  /** Refuse images with more pixels than this before decoding them (default `DEFAULT_MAX_IMAGE_PIXELS`). */
  maxPixels?: number;
}

/**
 * Decodes an encoded image (JPEG, PNG, WebP, ...) to raw RGB, honouring EXIF orientation. The size is
 * read from the header first, so an image over `maxPixels` is refused before any pixel is decoded.
 */
export async function decodeImage(
  encoded: Buffer | Uint8Array,
  options: ImageDecodeOptions = {},
): Promise<RawImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  let declared: { width?: number | undefined; height?: number | undefined };
  try {
    declared = await sharp(encoded, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new PlatformError(
      'invalid_input',
      `could not decode the image (${(err as Error).message}); pass a JPEG, PNG or WebP file`,
    );
  }
  const pixels = (declared.width ?? 0) * (declared.height ?? 0);
  if (pixels > maxPixels) {
    throw new PlatformError(
      'invalid_input',
      `image is ${declared.width}x${declared.height} (${pixels} pixels), over the limit of ${maxPixels} pixels; send a smaller image (e.g. resize to 4K or less)`,
    );
  }
  try {
    const { data, info } = await sharp(encoded, { limitInputPixels: maxPixels })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: 3,
    };
  } catch (err) {
    const message = (err as Error).message;
    if (/pixel limit/i.test(message))
      throw new PlatformError(
        'invalid_input',
        `image is over the limit of ${maxPixels} pixels; send a smaller image`,
      );
    throw new PlatformError(
      'invalid_input',
      `could not decode the image (${message}); pass a JPEG, PNG or WebP file`,
    );
  }
}

/** Letterboxes an encoded or raw image with sharp; returns the padded RGB pixels, the CHW float tensor and the mapping. */
export async function letterbox(
  image: Buffer | RawImage,
  options: LetterboxOptions,
): Promise<{ data: Uint8Array; tensor: Float32Array; width: number; height: number; meta: LetterboxMeta }> {
  const raw = Buffer.isBuffer(image) ? await decodeImage(image) : image;
  const width = options.width;
  const height = options.height ?? width;
  const color = options.color ?? 114;
  const meta = computeLetterbox(raw.width, raw.height, width, height);
  const nw = Math.min(width, Math.max(1, Math.round(raw.width * meta.scale)));
  const nh = Math.min(height, Math.max(1, Math.round(raw.height * meta.scale)));
  const out = await sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } })
    .removeAlpha()
    .resize(nw, nh, { fit: 'fill' })
    .extend({
      left: meta.padX,
      top: meta.padY,
      right: width - nw - meta.padX,
      bottom: height - nh - meta.padY,
      background: { r: color, g: color, b: color },
    })
    .raw()
    .toBuffer();
  const data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  return { data, tensor: hwcToChw(data, width, height, options), width, height, meta };
}

/** Converts interleaved RGB bytes to a planar CHW float32 tensor in the requested order and range. */
export function hwcToChw(
  data: Uint8Array,
  width: number,
  height: number,
  format: TensorFormat = {},
): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  const k = format.normalise === false ? 1 : 1 / 255;
  const bgr = format.order === 'bgr';
  const r0 = bgr ? 2 * plane : 0;
  const b0 = bgr ? 0 : 2 * plane;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[r0 + i] = data[p]! * k;
    out[plane + i] = data[p + 1]! * k;
    out[b0 + i] = data[p + 2]! * k;
  }
  return out;
}

/**
 * Turns raw frames into model-ready CHW float32 tensors in one fused pass (resample + pad + reorder + normalise),
 * reusing its buffers and lookup tables across frames of the same size.
 */
export class LetterboxTensorizer {
  readonly width: number;
  readonly height: number;
  private readonly color: number;
  private readonly k: number;
  private readonly bgr: boolean;
  private readonly nearest: boolean;
  private readonly tensor: Float32Array;
  private key = '';
  private meta: LetterboxMeta | undefined;
  private nw = 0;
  private nh = 0;
  private x0: Int32Array = new Int32Array(0);
  private x1: Int32Array = new Int32Array(0);
  private fx: Float32Array = new Float32Array(0);
  private y0: Int32Array = new Int32Array(0);
  private y1: Int32Array = new Int32Array(0);
  private fy: Float32Array = new Float32Array(0);

  constructor(options: LetterboxOptions) {
    this.width = options.width;
    this.height = options.height ?? options.width;
    this.color = options.color ?? 114;
    this.k = options.normalise === false ? 1 : 1 / 255;
    this.bgr = options.order === 'bgr';
    this.nearest = options.sampling === 'nearest';
    this.tensor = new Float32Array(3 * this.width * this.height);
  }

  /** Fills the shared tensor from `frame` and returns it with the mapping; the tensor is overwritten by the next call. */
  run(frame: RawImage): { tensor: Float32Array; meta: LetterboxMeta } {
    const ch = frame.channels;
    if ((ch !== 3 && ch !== 4) || frame.data.length < frame.width * frame.height * ch) {
      throw new PlatformError(
        'invalid_input',
        `raw frame is ${frame.data.length} bytes but ${frame.width}x${frame.height}x${ch} needs ${frame.width * frame.height * ch}; pass interleaved RGB (3) or RGBA (4) bytes`,
      );
    }
    const meta = this.prepare(frame.width, frame.height, ch);
    const { width: W, tensor: out, nw, nh, x0, x1, fx, y0, y1, fy, k } = this;
    const plane = W * this.height;
    const rOff = this.bgr ? 2 * plane : 0;
    const gOff = plane;
    const bOff = this.bgr ? 0 : 2 * plane;
    const src = frame.data;
    const rowBytes = frame.width * ch;
    for (let y = 0; y < nh; y++) {
      const base = (meta.padY + y) * W + meta.padX;
      const r = rOff + base;
      const g = gOff + base;
      const b = bOff + base;
      const row0 = y0[y]! * rowBytes;
      if (this.nearest) {
        for (let x = 0; x < nw; x++) {
          const p = row0 + x0[x]!;
          out[r + x] = src[p]! * k;
          out[g + x] = src[p + 1]! * k;
          out[b + x] = src[p + 2]! * k;
        }
        continue;
      }
      const row1 = y1[y]! * rowBytes;
      const wy = fy[y]!;
      const ky0 = (1 - wy) * k;
      const ky1 = wy * k;
      for (let x = 0; x < nw; x++) {
        const a = row0 + x0[x]!;
        const c = row0 + x1[x]!;
        const d = row1 + x0[x]!;
        const e = row1 + x1[x]!;
        const wx = fx[x]!;
        const wx0 = 1 - wx;
        out[r + x] = (src[a]! * wx0 + src[c]! * wx) * ky0 + (src[d]! * wx0 + src[e]! * wx) * ky1;
        out[g + x] =
          (src[a + 1]! * wx0 + src[c + 1]! * wx) * ky0 + (src[d + 1]! * wx0 + src[e + 1]! * wx) * ky1;
        out[b + x] =
          (src[a + 2]! * wx0 + src[c + 2]! * wx) * ky0 + (src[d + 2]! * wx0 + src[e + 2]! * wx) * ky1;
      }
    }
    return { tensor: out, meta };
  }

  private prepare(srcW: number, srcH: number, ch: number): LetterboxMeta {
    const key = `${srcW}x${srcH}x${ch}`;
    if (key === this.key && this.meta) return this.meta;
    const meta = computeLetterbox(srcW, srcH, this.width, this.height);
    this.nw = Math.min(this.width - meta.padX, Math.max(1, Math.round(srcW * meta.scale)));
    this.nh = Math.min(this.height - meta.padY, Math.max(1, Math.round(srcH * meta.scale)));
    const axis = (n: number, srcN: number, stride: number): [Int32Array, Int32Array, Float32Array] => {
      const i0 = new Int32Array(n);
      const i1 = new Int32Array(n);
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        if (this.nearest) {
          i0[i] = Math.min(srcN - 1, Math.floor((i + 0.5) / meta.scale)) * stride;
          continue;
        }
        const s = Math.min(Math.max((i + 0.5) / meta.scale - 0.5, 0), srcN - 1);
        const lo = Math.floor(s);
        i0[i] = lo * stride;
        i1[i] = Math.min(lo + 1, srcN - 1) * stride;
        f[i] = s - lo;
      }
      return [i0, i1, f];
    };
    [this.x0, this.x1, this.fx] = axis(this.nw, srcW, ch);
    [this.y0, this.y1, this.fy] = axis(this.nh, srcH, 1);
    // The padding never changes for a given frame size, so it is painted once and the content area overwritten each frame.
    this.tensor.fill(this.color * this.k);
    this.key = key;
    this.meta = meta;
    return meta;
  }
}

/** One-off fused letterbox of a raw frame into a fresh CHW float32 tensor; use a LetterboxTensorizer for video. */
export function letterboxToTensor(
  frame: RawImage,
  options: LetterboxOptions,
): { tensor: Float32Array; meta: LetterboxMeta } {
  const { tensor, meta } = new LetterboxTensorizer(options).run(frame);
  return { tensor, meta };
}
