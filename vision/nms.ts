/** Candidate boxes in struct-of-arrays form: `boxes` holds `count` xyxy quadruples. */
export interface Candidates {
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
  count: number;
}

/** NMS settings: IoU above which a lower-scored box of the same class is dropped, and how many to keep. */
export interface NmsOptions {
  iouThreshold?: number;
  maxDet?: number;
  /** When true, boxes of different classes suppress each other too. */
  agnostic?: boolean;
}

const MAX_GRID = 128;
const MAX_CELLS = 1 << 20;

/**
 * Greedy class-aware non-maximum suppression; returns the kept candidate indices, highest score first.
 * Sorts once, then checks each candidate only against kept boxes of its class in the grid cells it touches,
 * so the cost stays near-linear even with tens of thousands of candidates and no detection cap.
 */
export function nms(c: Candidates, options: NmsOptions = {}): Int32Array {
  const iouThreshold = options.iouThreshold ?? 0.45;
  const maxDet = options.maxDet ?? 300;
  const agnostic = options.agnostic ?? false;
  const n = c.count;
  if (n === 0 || maxDet <= 0) return new Int32Array(0);
  const { boxes, scores, classes } = c;

  const order = sortByScoreDesc(scores, n);

  // A uniform grid over the candidates' extent, with cells about the size of an average box.
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  let sumSide = 0;
  for (let i = 0, o = 0; i < n; i++, o += 4) {
    const x1 = boxes[o]!;
    const y1 = boxes[o + 1]!;
    const x2 = boxes[o + 2]!;
    const y2 = boxes[o + 3]!;
    if (x1 < minX) minX = x1;
    if (y1 < minY) minY = y1;
    if (x2 > maxX) maxX = x2;
    if (y2 > maxY) maxY = y2;
    const side = x2 - x1 + (y2 - y1);
    if (side > 0) sumSide += side / 2;
  }
  if (!Number.isFinite(minX + minY + maxX + maxY)) {
    minX = minY = 0;
    maxX = maxY = 1;
  }
  const spanX = Math.max(maxX - minX, 1e-6);
  const spanY = Math.max(maxY - minY, 1e-6);
  // Each class gets its own grid so a cell never holds boxes of other classes; the grid shrinks with many classes.
  let numClasses = 1;
  if (!agnostic) for (let i = 0; i < n; i++) if (classes[i]! >= numClasses) numClasses = classes[i]! + 1;
  const sparse = numClasses > 4096 || classes.some((v, i) => i < n && v < 0);
  const maxGrid = Math.max(
    1,
    Math.min(MAX_GRID, Math.floor(Math.sqrt(MAX_CELLS / (sparse ? 1 : numClasses)))),
  );
  const cellSize = Math.max(sumSide / n, spanX / maxGrid, spanY / maxGrid, 1e-6);
  const gw = Math.min(maxGrid, Math.max(1, Math.ceil(spanX / cellSize)));
  const gh = Math.min(maxGrid, Math.max(1, Math.ceil(spanY / cellSize)));
  const cellsPerClass = gw * gh;
  const inv = 1 / cellSize;
  const cellX = (v: number): number => {
    const k = Math.floor((v - minX) * inv);
    return k >= 0 ? (k < gw ? k : gw - 1) : 0;
  };
  const cellY = (v: number): number => {
    const k = Math.floor((v - minY) * inv);
    return k >= 0 ? (k < gh ? k : gh - 1) : 0;
  };

  const cap = Math.min(n, maxDet);
  const kx1 = new Float32Array(cap);
  const ky1 = new Float32Array(cap);
  const kx2 = new Float32Array(cap);
  const ky2 = new Float32Array(cap);
  const karea = new Float32Array(cap);
  const kcls = new Int32Array(cap);
  const seen = new Int32Array(cap).fill(-1);
  const kept = new Int32Array(cap);
  // Cell membership as linked lists in flat, growable arrays: cellHead -> entry -> next entry.
  const cellHead = new Int32Array(cellsPerClass * (sparse ? 1 : numClasses)).fill(-1);
  let entryBox = new Int32Array(cap * 4);
  let entryNext = new Int32Array(cap * 4);
  let entries = 0;
  let nk = 0;

  for (let oi = 0; oi < n && nk < cap; oi++) {
    const i = order[oi]!;
    const o = i * 4;
    const x1 = boxes[o]!;
    const y1 = boxes[o + 1]!;
    const x2 = boxes[o + 2]!;
    const y2 = boxes[o + 3]!;
    const area = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
    const cls = agnostic ? 0 : classes[i]!;
    const base = sparse ? 0 : cls * cellsPerClass;
    const cx0 = cellX(x1);
    const cx1 = cellX(x2);
    const cy0 = cellY(y1);
    const cy1 = cellY(y2);
    let suppressed = false;
    scan: for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        for (let e = cellHead[base + cy * gw + cx]!; e >= 0; e = entryNext[e]!) {
          const j = entryBox[e]!;
          if (kcls[j] !== cls || seen[j] === oi) continue;
          seen[j] = oi;
          const iw = Math.min(x2, kx2[j]!) - Math.max(x1, kx1[j]!);
          if (iw <= 0) continue;
          const ih = Math.min(y2, ky2[j]!) - Math.max(y1, ky1[j]!);
          if (ih <= 0) continue;
          const inter = iw * ih;
          const union = area + karea[j]! - inter;
          if (union > 0 && inter / union > iouThreshold) {
            suppressed = true;
            break scan;
          }
        }
      }
    }
    if (suppressed) continue;
    kx1[nk] = x1;
    ky1[nk] = y1;
    kx2[nk] = x2;
    ky2[nk] = y2;
    karea[nk] = area;
    kcls[nk] = cls;
    kept[nk] = i;
    const need = entries + (cx1 - cx0 + 1) * (cy1 - cy0 + 1);
    if (need > entryBox.length) {
      const size = Math.max(need, entryBox.length * 2);
      const nb = new Int32Array(size);
      nb.set(entryBox);
      entryBox = nb;
      const nn = new Int32Array(size);
      nn.set(entryNext);
      entryNext = nn;
    }
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const cell = base + cy * gw + cx;
        entryBox[entries] = nk;
        entryNext[entries] = cellHead[cell]!;
        cellHead[cell] = entries++;
      }
    }
    nk++;
  }
  return kept.slice(0, nk);
}

const INDEX_BITS = 2 ** 21;

// Score-descending order with ties by index. A float32's bit pattern orders like its value for non-negative numbers,
// so (inverted bits, index) packs into one float64 key and a comparator-free native sort does the work.
function sortByScoreDesc(scores: Float32Array, n: number): Uint32Array {
  const order = new Uint32Array(n);
  if (n >= INDEX_BITS || scores.byteOffset % 4 !== 0) {
    for (let i = 0; i < n; i++) order[i] = i;
    return order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  }
  const bits = new Uint32Array(scores.buffer, scores.byteOffset, n);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const b = bits[i]!;
    // Negative scores and NaN (bit patterns above +Infinity) sort as 0.
    keys[i] = (0x7f800000 - (b > 0x7f800000 ? 0 : b)) * INDEX_BITS + i;
  }
  keys.sort();
  for (let i = 0; i < n; i++) order[i] = keys[i]! % INDEX_BITS;
  return order;
}
