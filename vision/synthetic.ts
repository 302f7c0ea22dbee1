import type { Box } from './boxes.js';

/** Class names of the synthetic helmet dataset, in class-id order. */
export const SYNTHETIC_CLASSES: readonly string[] = ['helmet', 'head', 'vest'];

/** One labelled object of a synthetic scene (box in pixels). */
export interface SyntheticObject {
  classId: number;
  box: Box;
}

/** A rendered synthetic scene: raw RGB pixels and its labels. */
export interface SyntheticScene {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
  objects: SyntheticObject[];
}

/** Scene size options (square 320 by default). */
export interface SceneOptions {
  width?: number;
  height?: number;
}

/** Small seeded PRNG (mulberry32): returns a function giving uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a base seed with indices into a new 32-bit seed, so every image of every split is independent. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

type Rgb = [number, number, number];

const HELMET_COLOURS: Rgb[] = [
  [245, 245, 240],
  [250, 210, 20],
  [255, 120, 10],
  [215, 30, 30],
  [30, 80, 210],
  [30, 170, 60],
];
const VEST_COLOURS: Rgb[] = [
  [210, 255, 30],
  [255, 110, 0],
  [255, 230, 0],
];
const SHIRT_COLOURS: Rgb[] = [
  [40, 50, 90],
  [90, 90, 95],
  [110, 75, 50],
  [200, 200, 205],
  [25, 25, 30],
  [70, 100, 70],
  [130, 40, 50],
];
const SKIN_TONES: Rgb[] = [
  [255, 220, 185],
  [235, 190, 150],
  [200, 150, 110],
  [160, 110, 75],
  [110, 75, 50],
];
const HAIR_COLOURS: Rgb[] = [
  [30, 25, 20],
  [70, 45, 25],
  [140, 100, 60],
  [90, 90, 90],
];

class Canvas {
  readonly data: Uint8Array;
  readonly owner: Int16Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 3);
    this.owner = new Int16Array(width * height).fill(-1);
  }

  rect(x0: number, y0: number, x1: number, y1: number, c: Rgb, id: number): void {
    const xa = Math.max(0, Math.round(x0));
    const xb = Math.min(this.width, Math.round(x1));
    const ya = Math.max(0, Math.round(y0));
    const yb = Math.min(this.height, Math.round(y1));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) this.set(x, y, c, id);
    }
  }

  // Filled ellipse, optionally only the part above `yMax` (a helmet dome).
  ellipse(
    cx: number,
    cy: number,
    rx: number,
    ry: number,
    c: Rgb,
    id: number,
    yMax = Infinity,
    shade = 0,
  ): void {
    const ya = Math.max(0, Math.floor(cy - ry));
    const yb = Math.min(this.height - 1, Math.ceil(Math.min(cy + ry, yMax)));
    const xa = Math.max(0, Math.floor(cx - rx));
    const xb = Math.min(this.width - 1, Math.ceil(cx + rx));
    for (let y = ya; y <= yb; y++) {
      const dy = (y + 0.5 - cy) / ry;
      for (let x = xa; x <= xb; x++) {
        const dx = (x + 0.5 - cx) / rx;
        const r2 = dx * dx + dy * dy;
        if (r2 > 1) continue;
        if (shade === 0) {
          this.set(x, y, c, id);
          continue;
        }
        // A soft highlight towards the upper left reads as a rounded, glossy surface.
        const hl = Math.max(0, 1 - ((dx + 0.35) ** 2 + (dy + 0.45) ** 2) * 2.2) * shade;
        const dark = 1 - 0.25 * r2;
        this.set(
          x,
          y,
          [
            c[0] * dark + (255 - c[0] * dark) * hl,
            c[1] * dark + (255 - c[1] * dark) * hl,
            c[2] * dark + (255 - c[2] * dark) * hl,
          ],
          id,
        );
      }
    }
  }

  set(x: number, y: number, c: Rgb, id: number): void {
    const p = y * this.width + x;
    const o = p * 3;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
    this.owner[p] = id;
  }

  countOwned(box: Box, id: number): number {
    let n = 0;
    const xa = Math.max(0, Math.floor(box[0]));
    const xb = Math.min(this.width, Math.ceil(box[2]));
    const ya = Math.max(0, Math.floor(box[1]));
    const yb = Math.min(this.height, Math.ceil(box[3]));
    for (let y = ya; y < yb; y++)
      for (let x = xa; x < xb; x++) if (this.owner[y * this.width + x] === id) n++;
    return n;
  }
}

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length) % items.length]!;
}

function jitter(rng: () => number, c: Rgb, amount: number): Rgb {
  const k = 1 + (rng() - 0.5) * amount;
  const ch = (v: number): number => Math.min(255, Math.max(0, v * k + (rng() - 0.5) * 20));
  return [ch(c[0]), ch(c[1]), ch(c[2])];
}

function randomColour(rng: () => number, lo = 30, hi = 220): Rgb {
  return [lo + rng() * (hi - lo), lo + rng() * (hi - lo), lo + rng() * (hi - lo)];
}

function paintBackground(cv: Canvas, rng: () => number): void {
  const { width: W, height: H, data } = cv;
  const kind = Math.floor(rng() * 4);
  const a = randomColour(rng);
  const b = randomColour(rng);
  const angle = rng() * Math.PI;
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  const period = 8 + rng() * 40;
  const horizon = H * (0.3 + rng() * 0.3);
  const blocks = kind === 1 ? Array.from({ length: 64 }, () => (rng() - 0.5) * 70) : [];
  const t = new Float32Array(W * H);
  if (kind === 0) {
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) t[y * W + x] = (x * ca + y * sa) / (W + H) + 0.5;
  } else if (kind === 1) {
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) t[y * W + x] = 0.5 + blocks[((y >> 4) * 7 + (x >> 4)) & 63]! / 255;
  } else if (kind === 2) {
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        t[y * W + x] = Math.floor((x * ca + y * sa) / period) % 2 === 0 ? 0.15 : 0.85;
  } else {
    for (let y = 0; y < H; y++)
      t.fill(
        y < horizon ? (0.3 * y) / horizon : 0.7 + (0.3 * (y - horizon)) / (H - horizon),
        y * W,
        (y + 1) * W,
      );
  }
  const d0 = b[0] - a[0];
  const d1 = b[1] - a[1];
  const d2 = b[2] - a[2];
  for (let i = 0, o = 0; i < t.length; i++, o += 3) {
    const v = t[i]!;
    data[o] = a[0] + d0 * v;
    data[o + 1] = a[1] + d1 * v;
    data[o + 2] = a[2] + d2 * v;
  }
}

function paintProp(cv: Canvas, rng: () => number): void {
  const W = cv.width;
  const H = cv.height;
  const c = randomColour(rng, 40, 200);
  if (rng() < 0.5) {
    const w = W * (0.04 + rng() * 0.05);
    const x = rng() * W;
    cv.rect(x, 0, x + w, H, c, -1);
  } else {
    const w = W * (0.1 + rng() * 0.25);
    const h = H * (0.08 + rng() * 0.2);
    const x = rng() * (W - w);
    const y = H * 0.4 + rng() * (H * 0.6 - h);
    cv.rect(x, y, x + w, y + h, c, -1);
    cv.rect(x, y + h * 0.45, x + w, y + h * 0.55, jitter(rng, c, 0.6), -1);
  }
}

interface Placed {
  id: number;
  classId: number;
  box: Box;
  painted: number;
}

function paintWorker(
  cv: Canvas,
  rng: () => number,
  d: number,
  hx: number,
  hy: number,
  nextId: () => number,
  placed: Placed[],
): void {
  const rx = d / 2;
  const ry = 0.575 * d;
  const skin = jitter(rng, pick(rng, SKIN_TONES), 0.15);
  const shirt = jitter(rng, pick(rng, SHIRT_COLOURS), 0.3);
  const torsoTop = hy + ry + 0.08 * d;
  const torsoW = 2.1 * d;
  const torsoH = 2.4 * d;
  const tx = hx + (rng() - 0.5) * 0.2 * d;
  cv.rect(hx - 0.18 * d, hy + ry * 0.6, hx + 0.18 * d, torsoTop + 1, skin, -1);
  cv.rect(tx - torsoW / 2, torsoTop, tx + torsoW / 2, torsoTop + torsoH, shirt, -1);
  if (rng() < 0.55) {
    const id = nextId();
    const vc = jitter(rng, pick(rng, VEST_COLOURS), 0.15);
    const vx0 = tx - torsoW / 2 + 0.25 * d;
    const vx1 = tx + torsoW / 2 - 0.25 * d;
    const vy1 = torsoTop + torsoH * (0.85 + rng() * 0.1);
    cv.rect(vx0, torsoTop, vx1, vy1, vc, id);
    const stripe: Rgb = [200, 205, 210];
    for (const f of [0.45, 0.7]) {
      const sy = torsoTop + (vy1 - torsoTop) * f;
      cv.rect(vx0, sy, vx1, sy + Math.max(1.5, 0.12 * d), stripe, id);
    }
    cv.rect(tx - 0.12 * d, torsoTop, tx + 0.12 * d, torsoTop + 0.6 * d, shirt, id);
    const box: Box = [vx0, torsoTop, vx1, vy1];
    placed.push({ id, classId: 2, box, painted: cv.countOwned(box, id) });
  }
  const id = nextId();
  const helmet = rng() < 0.55;
  cv.ellipse(hx, hy, rx, ry, skin, id);
  if (!helmet)
    cv.ellipse(hx, hy - ry * 0.35, rx * 1.02, ry * 0.7, pick(rng, HAIR_COLOURS), id, hy - ry * 0.25);
  const eye = Math.max(1, d * 0.07);
  const dark: Rgb = [20, 20, 25];
  cv.rect(hx - 0.2 * d - eye, hy, hx - 0.2 * d + eye, hy + eye * 1.4, dark, id);
  cv.rect(hx + 0.2 * d - eye, hy, hx + 0.2 * d + eye, hy + eye * 1.4, dark, id);
  let box: Box = [hx - rx, hy - ry, hx + rx, hy + ry];
  if (helmet) {
    const hc = jitter(rng, pick(rng, HELMET_COLOURS), 0.12);
    const domeCy = hy - 0.12 * d;
    const domeR = 0.62 * d;
    cv.ellipse(hx, domeCy, domeR, domeR, hc, id, domeCy, 0.6);
    const brimW = 0.7 * d;
    cv.rect(
      hx - brimW,
      domeCy - 0.02 * d,
      hx + brimW,
      domeCy + Math.max(1.5, 0.11 * d),
      jitter(rng, hc, 0.2),
      id,
    );
    box = [hx - brimW, domeCy - domeR, hx + brimW, hy + ry];
  }
  placed.push({ id, classId: helmet ? 0 : 1, box, painted: cv.countOwned(box, id) });
}

function adjustPixels(data: Uint8Array, seed: number, contrast: number, bright: number, sigma: number): void {
  let x = seed | 0;
  const k = (2 * sigma) / 255;
  const off = 128 + bright - 128 * contrast - 382.5 * k;
  for (let i = 0; i < data.length; i++) {
    // Inline xorshift32: the sum of three random bytes is a cheap near-Gaussian, and a PRNG call per channel would dominate.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const v = data[i]! * contrast + off + ((x & 255) + ((x >>> 8) & 255) + ((x >>> 16) & 255)) * k;
    data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
}

/** Renders one deterministic scene of workers with and without helmets and vests, with its YOLO-ready labels. */
export function renderScene(seed: number, options: SceneOptions = {}): SyntheticScene {
  const W = options.width ?? 320;
  const H = options.height ?? W;
  const rng = mulberry32(seed);
  const cv = new Canvas(W, H);
  paintBackground(cv, rng);
  const unit = Math.min(W, H) / 320;
  const props = Math.floor(rng() * 3);
  for (let i = 0; i < props; i++) paintProp(cv, rng);

  const workers = 1 + Math.floor(rng() * 5);
  const sizes = Array.from({ length: workers }, () => (12 + rng() * 34) * unit).sort((a, b) => a - b);
  let ids = 0;
  const nextId = (): number => ids++;
  const placed: Placed[] = [];
  for (const d of sizes) {
    const hx = d + rng() * (W - 2 * d);
    const hy = 0.8 * d + rng() * (H - 2.4 * d);
    paintWorker(cv, rng, d, hx, hy, nextId, placed);
  }
  if (rng() < 0.35) {
    const c = randomColour(rng, 60, 180);
    const w = W * (0.1 + rng() * 0.2);
    const h = H * (0.06 + rng() * 0.12);
    const x = rng() * (W - w);
    const y = rng() * (H - h);
    cv.rect(x, y, x + w, y + h, c, -1);
  }

  const contrast = 0.75 + rng() * 0.5;
  const bright = (rng() - 0.5) * 60;
  const sigma = rng() * 14;
  adjustPixels(cv.data, deriveSeed(seed, 7) | 1, contrast, bright, sigma);

  const objects: SyntheticObject[] = [];
  for (const p of placed) {
    const visible = cv.countOwned(p.box, p.id);
    if (p.painted === 0 || visible / p.painted < 0.35) continue;
    const box: Box = [
      Math.max(0, p.box[0]),
      Math.max(0, p.box[1]),
      Math.min(W, p.box[2]),
      Math.min(H, p.box[3]),
    ];
    const fullArea = (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]);
    if ((box[2] - box[0]) * (box[3] - box[1]) < 0.25 * fullArea) continue;
    objects.push({ classId: p.classId, box });
  }
  return { data: cv.data, width: W, height: H, channels: 3, objects };
}

/** Formats a scene's objects as YOLO label lines (`class cx cy w h`, normalised). */
export function toYoloLabels(objects: SyntheticObject[], width: number, height: number): string {
  return objects
    .map((o) => {
      const [x1, y1, x2, y2] = o.box;
      const f = (v: number): string => v.toFixed(6);
      return `${o.classId} ${f((x1 + x2) / 2 / width)} ${f((y1 + y2) / 2 / height)} ${f((x2 - x1) / width)} ${f((y2 - y1) / height)}`;
    })
    .join('\n');
}
