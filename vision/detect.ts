import { readFile, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeZodError, PlatformError } from '../core/errors.js';
import { COCO_NAMES } from './coco-names.js';
import { DEFAULT_MAX_IMAGE_PIXELS, decodeImage } from './letterbox.js';
import { parseClassNames } from './onnx-metadata.js';
import { loadDetector, type Detection } from './pipeline.js';

/** Options of `visioninapp detect`, validated with zod (numbers may arrive as CLI strings). */
export const detectOptionsSchema = z.object({
  model: z.string().min(1).describe('Path to the ONNX detector'),
  image: z.string().min(1).describe('Path to the image to run it on (JPEG, PNG, WebP)'),
  layout: z
    .enum(['auto', 'ultralytics', 'end2end', 'yolox'])
    .default('auto')
    .describe('Output layout; auto infers it from the output shape'),
  names: z
    .string()
    .min(1)
    .optional()
    .describe('"coco", or a file of class names (JSON list/object, data.yaml, or one name per line)'),
  out: z.string().min(1).optional().describe('Write the image with boxes drawn to this PNG path'),
  conf: z.coerce.number().min(0).max(1).default(0.25).describe('Minimum score'),
  iou: z.coerce.number().min(0).max(1).default(0.45).describe('NMS IoU threshold'),
  maxDet: z.coerce.number().int().min(1).max(10_000).default(300).describe('Maximum detections'),
});

/** Input of `runDetectCommand`. */
export type DetectCommandOptions = z.input<typeof detectOptionsSchema>;

/** What `visioninapp detect` prints: detections, the shapes it saw, and where the drawing went. */
export interface DetectCommandResult {
  detections: Detection[];
  layout: string;
  names: string[];
  shapes: { input: number[]; outputs: Record<string, number[]> };
  image: { width: number; height: number };
  annotated?: string;
}

/** Loads class names for `--names`: `coco`, a JSON list or id→name object, a YOLO data.yaml, or one name per line. */
export async function loadClassNames(spec: string): Promise<string[]> {
  if (spec.toLowerCase() === 'coco') return [...COCO_NAMES];
  let text: string;
  try {
    text = await readFile(spec, 'utf8');
  } catch (err) {
    throw new PlatformError(
      'not_found',
      `cannot read names file "${spec}" (${(err as NodeJS.ErrnoException).code ?? 'error'}); pass --names coco or a file path`,
    );
  }
  const direct = parseClassNames(text);
  if (direct) return direct;
  if (/\.ya?ml$/i.test(spec)) {
    const doc: unknown = parseYaml(text);
    const names = doc && typeof doc === 'object' ? (doc as { names?: unknown }).names : undefined;
    if (Array.isArray(names) && names.every((n) => typeof n === 'string')) return names as string[];
    if (names && typeof names === 'object') {
      const parsed = parseClassNames(JSON.stringify(names));
      if (parsed) return parsed;
    }
  }
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 0)
    throw new PlatformError('invalid_input', `names file "${spec}" is empty; put one class name per line`);
  return lines;
}

const PALETTE = [
  '#ff3838',
  '#2c99a8',
  '#ff9d97',
  '#1a9334',
  '#ff701f',
  '#00c2ff',
  '#ffb21d',
  '#344593',
  '#cfd231',
  '#6473ff',
  '#48f90a',
  '#ff95c8',
];

function escapeXml(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** Draws detections with labels over an image (SVG overlay composited by sharp) and returns PNG bytes. */
export async function drawDetections(
  image: Buffer,
  width: number,
  height: number,
  detections: Detection[],
): Promise<Buffer> {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 320));
  const font = Math.max(11, Math.round(Math.min(width, height) / 40));
  const parts = detections.map((d) => {
    const [x1, y1, x2, y2] = d.box;
    const colour = PALETTE[d.classId % PALETTE.length]!;
    const label = `${escapeXml(d.className)} ${d.score.toFixed(2)}`;
    const ly = y1 > font + 4 ? y1 - font - 4 : y1;
    const lw = Math.round(label.length * font * 0.6) + 6;
    return (
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>` +
      `<rect x="${x1.toFixed(1)}" y="${ly.toFixed(1)}" width="${lw}" height="${font + 4}" fill="${colour}"/>` +
      `<text x="${(x1 + 3).toFixed(1)}" y="${(ly + font).toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="#ffffff">${label}</text>`
    );
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
  return sharp(image, { limitInputPixels: DEFAULT_MAX_IMAGE_PIXELS })
    .rotate()
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}

/** Runs `visioninapp detect`: loads the model, detects on the image, optionally writes an annotated PNG. */
export async function runDetectCommand(input: DetectCommandOptions): Promise<DetectCommandResult> {
  const parsed = detectOptionsSchema.safeParse(input);
  if (!parsed.success)
    throw new PlatformError('invalid_input', `invalid detect options: ${describeZodError(parsed.error)}`);
  const opts = parsed.data;
  const names = opts.names ? await loadClassNames(opts.names) : undefined;
  let encoded: Buffer;
  try {
    encoded = await readFile(opts.image);
  } catch (err) {
    throw new PlatformError(
      'not_found',
      `cannot read image "${opts.image}" (${(err as NodeJS.ErrnoException).code ?? 'error'}); check the path`,
    );
  }
  const raw = await decodeImage(encoded);
  const detector = await loadDetector(opts.model, { layout: opts.layout, ...(names ? { names } : {}) });
  try {
    const detections = await detector.detect(raw, { conf: opts.conf, iou: opts.iou, maxDet: opts.maxDet });
    const result: DetectCommandResult = {
      detections,
      layout: detector.layout,
      names: detector.names,
      shapes: { input: detector.inputShape, outputs: detector.outputShapes },
      image: { width: raw.width, height: raw.height },
    };
    if (opts.out) {
      const png = await drawDetections(encoded, raw.width, raw.height, detections);
      await writeFile(opts.out, png);
      result.annotated = opts.out;
    }
    return result;
  } finally {
    await detector.dispose();
  }
}
