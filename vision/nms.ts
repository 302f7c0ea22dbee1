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

/**
 * Greedy class-aware non-maximum suppression; returns the kept candidate indices, highest score first.
 * Sorts once, then compares each candidate only with the boxes already kept in its own class.
 */
export function nms(c: Candidates, options: NmsOptions = {}): Int32Array {
  const iouThreshold = options.iouThreshold ?? 0.45;
  const maxDet = options.maxDet ?? 300;
  const n = c.count;
  if (n === 0 || maxDet <= 0) return new Int32Array(0);
  const { boxes, scores, classes } = c;

  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const s = scores;
  order.sort((a, b) => s[b]! - s[a]! || a - b);

  // Kept boxes per class live in one flat buffer as singly linked lists so no per-class arrays are allocated.
  const cap = Math.min(n, maxDet);
  const kx1 = new Float32Array(cap);
  const ky1 = new Float32Array(cap);
  const kx2 = new Float32Array(cap);
  const ky2 = new Float32Array(cap);
  const karea = new Float32Array(cap);
  const knext = new Int32Array(cap);
  const head = new Map<number, number>();
  const kept = new Int32Array(cap);
  let nk = 0;

  for (let oi = 0; oi < n && nk < cap; oi++) {
    const i = order[oi]!;
    const o = i * 4;
    const x1 = boxes[o]!;
    const y1 = boxes[o + 1]!;
    const x2 = boxes[o + 2]!;
    const y2 = boxes[o + 3]!;
    const area = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
    const cls = options.agnostic ? 0 : classes[i]!;
    let j = head.get(cls) ?? -1;
    let suppressed = false;
    while (j >= 0) {
      const iw = Math.min(x2, kx2[j]!) - Math.max(x1, kx1[j]!);
      if (iw > 0) {
        const ih = Math.min(y2, ky2[j]!) - Math.max(y1, ky1[j]!);
        if (ih > 0) {
          const inter = iw * ih;
          const union = area + karea[j]! - inter;
          if (union > 0 && inter / union > iouThreshold) {
            suppressed = true;
            break;
          }
        }
      }
      j = knext[j]!;
    }
    if (suppressed) continue;
    kx1[nk] = x1;
    ky1[nk] = y1;
    kx2[nk] = x2;
    ky2[nk] = y2;
    karea[nk] = area;
    knext[nk] = head.get(cls) ?? -1;
    head.set(cls, nk);
    kept[nk] = i;
    nk++;
  }
  return kept.slice(0, nk);
}
