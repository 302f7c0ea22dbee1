import { PlatformError } from '../core/errors.js';
import type { Candidates } from './nms.js';

/** The output layouts we decode: Ultralytics YOLOv8/11/12, end-to-end YOLO26/v10, YOLOX. */
export type Layout = 'ultralytics' | 'end2end' | 'yolox';

/** All known layouts, for flags and schemas. */
export const LAYOUTS: readonly Layout[] = ['ultralytics', 'end2end', 'yolox'];

/** Strides of the three detection levels every supported family uses. */
export const DEFAULT_STRIDES: readonly number[] = [8, 16, 32];

/** What a decoder needs besides the tensor. */
export interface DecodeOptions {
  /** Minimum score; lower candidates are never materialised. */
  conf: number;
  inputWidth: number;
  inputHeight: number;
  strides?: readonly number[];
}

/** A detected layout and the class count it implies (undefined when the layout does not reveal it). */
export interface LayoutInfo {
  layout: Layout;
  numClasses: number | undefined;
}

/** Number of grid cells over all strides for an input size (8400 for 640x640 at 8/16/32). */
export function gridCount(
  inputWidth: number,
  inputHeight: number,
  strides: readonly number[] = DEFAULT_STRIDES,
): number {
  let n = 0;
  for (const s of strides) n += Math.ceil(inputWidth / s) * Math.ceil(inputHeight / s);
  return n;
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function layoutError(shape: readonly number[], why: string): PlatformError {
  return new PlatformError(
    'invalid_input',
    `cannot tell the output layout from shape ${fmt(shape)}: ${why}; pass --layout ultralytics ([1, 4+nc, N]), end2end ([1, N, 6]) or yolox ([1, N, 5+nc])`,
    { shape: [...shape] },
  );
}

/** Infers the layout from an output shape and the model input size; throws invalid_input when ambiguous or unknown. */
export function detectLayout(
  shape: readonly number[],
  inputSize: number | { width: number; height: number },
  nc?: number,
): LayoutInfo {
  const w = typeof inputSize === 'number' ? inputSize : inputSize.width;
  const h = typeof inputSize === 'number' ? inputSize : inputSize.height;
  if (shape.length !== 3 || shape[0] !== 1) throw layoutError(shape, 'expected a rank-3 output with batch 1');
  const a = shape[1]!;
  const b = shape[2]!;
  const cells = gridCount(w, h);
  const ncOk = (k: number): boolean => nc === undefined || nc === k;

  if (b === cells && a >= 5 && a < b && ncOk(a - 4)) return { layout: 'ultralytics', numClasses: a - 4 };
  if (b === 6 && a !== cells) return { layout: 'end2end', numClasses: undefined };
  if (b === 6 && a === cells) {
    if (nc === 1) return { layout: 'yolox', numClasses: 1 };
    if (nc !== undefined) return { layout: 'end2end', numClasses: undefined };
    throw layoutError(
      shape,
      `${a} rows match the ${w}x${h} grid, so it may be YOLOX with 1 class or end-to-end with ${a} boxes`,
    );
  }
  if (a === cells && b > 6) {
    if (nc !== undefined && b - 4 === nc)
      throw layoutError(
        shape,
        `it looks like a transposed Ultralytics output ([1, N, 4+nc]), which is not supported`,
      );
    if (ncOk(b - 5)) return { layout: 'yolox', numClasses: b - 5 };
  }
  if (nc !== undefined && a === 4 + nc && b > a) return { layout: 'ultralytics', numClasses: nc };
  throw layoutError(
    shape,
    `it matches none of the known layouts for a ${w}x${h} input (${cells} grid cells at strides 8/16/32${nc === undefined ? '' : `, ${nc} classes`})`,
  );
}

function emptyCandidates(capacity: number): Candidates {
  return {
    boxes: new Float32Array(capacity * 4),
    scores: new Float32Array(capacity),
    classes: new Int32Array(capacity),
    count: 0,
  };
}

function finish(c: Candidates): Candidates {
  return {
    boxes: c.boxes.subarray(0, c.count * 4),
    scores: c.scores.subarray(0, c.count),
    classes: c.classes.subarray(0, c.count),
    count: c.count,
  };
}

function checkSize(data: ArrayLike<number>, shape: readonly number[], layout: Layout): void {
  const need = shape.reduce((p, d) => p * d, 1);
  if (shape.length !== 3 || shape[0] !== 1 || data.length < need) {
    throw new PlatformError(
      'invalid_input',
      `a ${layout} output must be [1, a, b] with its data; got shape ${fmt(shape)} and ${data.length} values`,
    );
  }
}

/** Decodes Ultralytics `[1, 4+nc, N]` (cx, cy, w, h in input pixels, then per-class scores) to xyxy candidates above `conf`. */
export function decodeUltralytics(
  data: Float32Array,
  shape: readonly number[],
  options: Pick<DecodeOptions, 'conf'>,
): Candidates {
  checkSize(data, shape, 'ultralytics');
  const rows = shape[1]!;
  const n = shape[2]!;
  const nc = rows - 4;
  if (nc < 1)
    throw new PlatformError(
      'invalid_input',
      `an ultralytics output needs at least 5 rows (4 box + classes); got shape ${fmt(shape)}`,
    );
  const conf = options.conf;
  let out = emptyCandidates(Math.min(n, 1024));
  for (let i = 0; i < n; i++) {
    let best = data[4 * n + i]!;
    let cls = 0;
    for (let c = 1; c < nc; c++) {
      const v = data[(4 + c) * n + i]!;
      if (v > best) {
        best = v;
        cls = c;
      }
    }
    if (!(best >= conf)) continue;
    out = ensure(out, n);
    const cx = data[i]!;
    const cy = data[n + i]!;
    const hw = data[2 * n + i]! / 2;
    const hh = data[3 * n + i]! / 2;
    push(out, cx - hw, cy - hh, cx + hw, cy + hh, best, cls);
  }
  return finish(out);
}

/** Decodes end-to-end `[1, N, 6]` (x1, y1, x2, y2, score, class in input pixels) to candidates above `conf`. */
export function decodeEnd2End(
  data: Float32Array,
  shape: readonly number[],
  options: Pick<DecodeOptions, 'conf'>,
): Candidates {
  checkSize(data, shape, 'end2end');
  const n = shape[1]!;
  const k = shape[2]!;
  if (k < 6)
    throw new PlatformError('invalid_input', `an end2end output must be [1, N, 6]; got shape ${fmt(shape)}`);
  let out = emptyCandidates(Math.min(n, 1024));
  for (let i = 0; i < n; i++) {
    const o = i * k;
    const score = data[o + 4]!;
    if (!(score >= options.conf)) continue;
    out = ensure(out, n);
    push(out, data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!, score, Math.round(data[o + 5]!));
  }
  return finish(out);
}

/**
 * Decodes raw YOLOX `[1, N, 5+nc]` (grid offsets, log sizes, objectness, class probabilities) over strides 8/16/32;
 * score = objectness x class probability.
 */
export function decodeYolox(
  data: Float32Array,
  shape: readonly number[],
  options: DecodeOptions,
): Candidates {
  checkSize(data, shape, 'yolox');
  const n = shape[1]!;
  const k = shape[2]!;
  const nc = k - 5;
  const strides = options.strides ?? DEFAULT_STRIDES;
  const cells = gridCount(options.inputWidth, options.inputHeight, strides);
  if (nc < 1 || n !== cells) {
    throw new PlatformError(
      'invalid_input',
      `a yolox output for a ${options.inputWidth}x${options.inputHeight} input must be [1, ${cells}, 5+nc]; got shape ${fmt(shape)}`,
    );
  }
  let out = emptyCandidates(Math.min(n, 1024));
  let i = 0;
  for (const s of strides) {
    const gw = Math.ceil(options.inputWidth / s);
    const gh = Math.ceil(options.inputHeight / s);
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++, i++) {
        const o = i * k;
        const obj = data[o + 4]!;
        if (!(obj >= options.conf)) continue;
        let best = data[o + 5]!;
        let cls = 0;
        for (let c = 1; c < nc; c++) {
          const v = data[o + 5 + c]!;
          if (v > best) {
            best = v;
            cls = c;
          }
        }
        const score = obj * best;
        if (!(score >= options.conf)) continue;
        out = ensure(out, n);
        const cx = (data[o]! + gx) * s;
        const cy = (data[o + 1]! + gy) * s;
        const hw = (Math.exp(data[o + 2]!) * s) / 2;
        const hh = (Math.exp(data[o + 3]!) * s) / 2;
        push(out, cx - hw, cy - hh, cx + hw, cy + hh, score, cls);
      }
    }
  }
  return finish(out);
}

/** Decodes any supported layout. */
export function decodeOutput(
  layout: Layout,
  data: Float32Array,
  shape: readonly number[],
  options: DecodeOptions,
): Candidates {
  switch (layout) {
    case 'ultralytics':
      return decodeUltralytics(data, shape, options);
    case 'end2end':
      return decodeEnd2End(data, shape, options);
    case 'yolox':
      return decodeYolox(data, shape, options);
  }
}

function ensure(c: Candidates, max: number): Candidates {
  if (c.count < c.scores.length) return c;
  const bigger = emptyCandidates(Math.min(max, c.scores.length * 2));
  bigger.boxes.set(c.boxes);
  bigger.scores.set(c.scores);
  bigger.classes.set(c.classes);
  bigger.count = c.count;
  return bigger;
}

function push(
  c: Candidates,
  x1: number,
  y1: number,
  x2: number,
  y2: number,
  score: number,
  cls: number,
): void {
  const o = c.count * 4;
  c.boxes[o] = x1;
  c.boxes[o + 1] = y1;
  c.boxes[o + 2] = x2;
  c.boxes[o + 3] = y2;
  c.scores[c.count] = score;
  c.classes[c.count] = cls;
  c.count++;
}
