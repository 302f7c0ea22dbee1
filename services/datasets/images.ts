import sharp, { type Metadata } from 'sharp';
import type { LabeledBox } from '../../vision/formats/index.js';

/** What probing an image found: its oriented size and format, or why it cannot be used. */
export type ProbeResult =
  | { ok: true; width: number; height: number; format: string; ext: string }
  | { ok: false; kind: 'unreadable_image' | 'image_too_large'; message: string };

const EXT: Record<string, string> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
  tiff: 'tiff',
  gif: 'gif',
  avif: 'avif',
  heif: 'heic',
};

/** Reads an image's size (after EXIF orientation) and decodes it at reduced size to prove the pixels are intact. */
export async function probeImage(bytes: Buffer, maxPixels: number): Promise<ProbeResult> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    return {
      ok: false,
      kind: 'unreadable_image',
      message: `not a readable image: ${(err as Error).message}`,
    };
  }
  const ext = meta.format === undefined ? undefined : EXT[meta.format];
  // only raster formats: an SVG or PDF renamed to .jpg must not be rendered
  if (ext === undefined)
    return {
      ok: false,
      kind: 'unreadable_image',
      message: `unsupported image format ${meta.format ?? 'unknown'}; use JPEG, PNG, WebP, TIFF, GIF, AVIF or HEIF`,
    };
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) return { ok: false, kind: 'unreadable_image', message: 'image has no size' };
  if (width * height > maxPixels) {
    return {
      ok: false,
      kind: 'image_too_large',
      message: `${width}x${height} is ${width * height} pixels, over the limit of ${maxPixels}`,
    };
  }
  try {
    await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .resize(64, 64, { fit: 'inside' })
      .raw()
      .toBuffer();
  } catch (err) {
    return { ok: false, kind: 'unreadable_image', message: `corrupt image data: ${(err as Error).message}` };
  }
  return { ok: true, width, height, format: meta.format!, ext };
}

const PALETTE = [
  '#e6194b',
  '#3cb44b',
  '#ffe119',
  '#4363d8',
  '#f58231',
  '#911eb4',
  '#46f0f0',
  '#f032e6',
  '#bcf60c',
  '#fabebe',
];

/** A small JPEG of the image with its boxes and class names drawn, at most `size` pixels on its long side. */
export async function renderThumbnail(
  bytes: Buffer,
  width: number,
  height: number,
  boxes: readonly LabeledBox[],
  classNames: readonly string[],
  size = 256,
): Promise<Buffer> {
  const scale = Math.min(1, size / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const shapes = boxes
    .map((b) => {
      const color = PALETTE[b.classId % PALETTE.length]!;
      const x = (b.x1 * w).toFixed(1);
      const y = (b.y1 * h).toFixed(1);
      const label = escapeXml(classNames[b.classId] ?? String(b.classId));
      return (
        `<rect x="${x}" y="${y}" width="${((b.x2 - b.x1) * w).toFixed(1)}" height="${((b.y2 - b.y1) * h).toFixed(1)}" fill="none" stroke="${color}" stroke-width="2"/>` +
        `<text x="${x}" y="${Math.max(9, b.y1 * h - 2).toFixed(1)}" font-family="sans-serif" font-size="10" fill="${color}">${label}</text>`
      );
    })
    .join('');
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${shapes}</svg>`,
  );
  return sharp(bytes)
    .rotate()
    .resize(w, h, { fit: 'fill' })
    .composite([{ input: svg, top: 0, left: 0 }])
    .jpeg({ quality: 75 })
    .toBuffer();
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
