import type { Box } from './boxes.js';

/** A ground-truth box; crowd boxes are ignore regions, as in COCO. */
export interface GroundTruth {
  imageId: string | number;
  classId: number;
  box: Box;
  iscrowd?: boolean;
}

/** A scored detection to evaluate. */
export interface ScoredDetection {
  imageId: string | number;
  classId: number;
  box: Box;
  score: number;
}

/** Evaluation settings; defaults follow pycocotools (maxDets 100) and a 0.25 operating threshold. */
export interface EvaluateOptions {
  /** Class ids to report; defaults to every class seen in ground truth or detections. */
  classIds?: number[];
  maxDets?: number;
  /** Score threshold for the precision/recall operating point. */
  scoreThreshold?: number;
}

/** Per-class results; `ap50`/`ap5095` are -1 when the class has no ground truth (excluded from the means). */
export interface ClassEvaluation {
  classId: number;
  numGt: number;
  numDet: number;
  ap50: number;
  ap5095: number;
  precision: number;
  recall: number;
  /**
   * The precision-recall curve at IoU 0.5: interpolated precision (the envelope pycocotools averages
   * for AP50) at each of the 101 recall points 0, 0.01, …, 1; 0 past the highest recall reached.
   * Empty when the class has no ground truth.
   */
  pr50: number[];
}

/** COCO-style summary: mAP@0.5, mAP@0.5:0.95, and precision/recall at the score threshold (IoU 0.5). */
export interface Evaluation {
  map50: number;
  map5095: number;
  precision: number;
  recall: number;
  perClass: ClassEvaluation[];
}

/** IoU thresholds 0.50:0.05:0.95 computed exactly as numpy.linspace(.5, .95, 10) does. */
export const IOU_THRESHOLDS: readonly number[] = Array.from({ length: 10 }, (_, i) =>
  i === 9 ? 0.95 : i * ((0.95 - 0.5) / 9) + 0.5,
);

/** Recall thresholds 0:0.01:1 computed exactly as numpy.linspace(0, 1, 101) does. */
export const RECALL_THRESHOLDS: readonly number[] = Array.from({ length: 101 }, (_, i) =>
  i === 100 ? 1 : i * 0.01,
);

// COCO IoU: crowd ground truth uses the detection's own area as the denominator.
function cocoIou(d: Box, g: Box, crowd: boolean): number {
  const iw = Math.min(d[2], g[2]) - Math.max(d[0], g[0]);
  const ih = Math.min(d[3], g[3]) - Math.max(d[1], g[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const da = (d[2] - d[0]) * (d[3] - d[1]);
  const ga = (g[2] - g[0]) * (g[3] - g[1]);
  const union = crowd ? da : da + ga - inter;
  return union > 0 ? inter / union : 0;
}

interface ImageMatch {
  scores: number[];
  matched: Uint8Array[];
  ignored: Uint8Array[];
  numGt: number;
}

// pycocotools evaluateImg for one image and class, for the given IoU thresholds.
function matchImage(
  gts: GroundTruth[],
  dets: ScoredDetection[],
  thresholds: readonly number[],
  maxDets: number,
): ImageMatch {
  const g = [...gts].sort((a, b) => Number(a.iscrowd ?? false) - Number(b.iscrowd ?? false));
  const d = dets
    .map((x, i) => ({ x, i }))
    .sort((a, b) => b.x.score - a.x.score || a.i - b.i)
    .slice(0, maxDets)
    .map((e) => e.x);
  const gIg = g.map((x) => (x.iscrowd ? 1 : 0));
  const ious = d.map((di) => g.map((gi) => cocoIou(di.box, gi.box, gi.iscrowd ?? false)));
  const matched: Uint8Array[] = [];
  const ignored: Uint8Array[] = [];
  for (const t of thresholds) {
    const gtm = new Int32Array(g.length).fill(-1);
    const dtm = new Uint8Array(d.length);
    const dtIg = new Uint8Array(d.length);
    for (let di = 0; di < d.length; di++) {
      let best = Math.min(t, 1 - 1e-10);
      let m = -1;
      for (let gi = 0; gi < g.length; gi++) {
        if (gtm[gi]! >= 0 && !g[gi]!.iscrowd) continue;
        if (m > -1 && gIg[m] === 0 && gIg[gi] === 1) break;
        const v = ious[di]![gi]!;
        if (v < best) continue;
        best = v;
        m = gi;
      }
      if (m === -1) continue;
      dtIg[di] = gIg[m]!;
      dtm[di] = 1;
      gtm[m] = di;
    }
    matched.push(dtm);
    ignored.push(dtIg);
  }
  return { scores: d.map((x) => x.score), matched, ignored, numGt: gIg.filter((v) => v === 0).length };
}

// pycocotools accumulate: precision envelope sampled at 101 recall points (the curve), averaged.
function averagePrecision(
  scores: number[],
  tp: Uint8Array,
  ig: Uint8Array,
  numGt: number,
): { ap: number; curve: number[] } {
  if (numGt === 0) return { ap: -1, curve: [] };
  const order = scores.map((s, i) => ({ s, i })).sort((a, b) => b.s - a.s || a.i - b.i);
  const rc: number[] = [];
  const pr: number[] = [];
  let tps = 0;
  let fps = 0;
  for (const { i } of order) {
    if (ig[i]) continue;
    if (tp[i]) tps++;
    else fps++;
    rc.push(tps / numGt);
    pr.push(tps / (tps + fps + Number.EPSILON));
  }
  for (let i = pr.length - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
  let p = 0;
  const curve = RECALL_THRESHOLDS.map((r) => {
    while (p < rc.length && rc[p]! < r) p++;
    return p < rc.length ? pr[p]! : 0;
  });
  return { ap: curve.reduce((s, v) => s + v, 0) / RECALL_THRESHOLDS.length, curve };
}

/** Evaluates detections against ground truth the way pycocotools does (area range "all", maxDets 100 by default). */
export function evaluateDetections(
  groundTruth: GroundTruth[],
  detections: ScoredDetection[],
  options: EvaluateOptions = {},
): Evaluation {
  const maxDets = options.maxDets ?? 100;
  const threshold = options.scoreThreshold ?? 0.25;
  const classIds =
    options.classIds ??
    [...new Set([...groundTruth.map((g) => g.classId), ...detections.map((d) => d.classId)])].sort(
      (a, b) => a - b,
    );
  const key = (img: string | number, cls: number): string => `${typeof img}:${String(img)}\u0000${cls}`;
  const gtBy = new Map<string, GroundTruth[]>();
  const dtBy = new Map<string, ScoredDetection[]>();
  const images = new Set<string | number>();
  for (const g of groundTruth) {
    images.add(g.imageId);
    const k = key(g.imageId, g.classId);
    (gtBy.get(k) ?? gtBy.set(k, []).get(k)!).push(g);
  }
  for (const d of detections) {
    images.add(d.imageId);
    const k = key(d.imageId, d.classId);
    (dtBy.get(k) ?? dtBy.set(k, []).get(k)!).push(d);
  }

  const perClass: ClassEvaluation[] = [];
  let tpAll = 0;
  let fpAll = 0;
  let gtAll = 0;
  for (const cls of classIds) {
    const scores: number[] = [];
    const tp = IOU_THRESHOLDS.map(() => [] as number[]);
    const ig = IOU_THRESHOLDS.map(() => [] as number[]);
    let numGt = 0;
    let numDet = 0;
    let opTp = 0;
    let opFp = 0;
    for (const img of images) {
      const k = key(img, cls);
      const gts = gtBy.get(k) ?? [];
      const dts = dtBy.get(k) ?? [];
      numDet += dts.length;
      if (gts.length === 0 && dts.length === 0) continue;
      const m = matchImage(gts, dts, IOU_THRESHOLDS, maxDets);
      numGt += m.numGt;
      scores.push(...m.scores);
      m.matched.forEach((arr, t) => tp[t]!.push(...arr));
      m.ignored.forEach((arr, t) => ig[t]!.push(...arr));
      const atThreshold = matchImage(
        gts,
        dts.filter((d) => d.score >= threshold),
        [0.5],
        maxDets,
      );
      atThreshold.matched[0]!.forEach((v, i) => {
        if (atThreshold.ignored[0]![i]) return;
        if (v) opTp++;
        else opFp++;
      });
    }
    const aps = IOU_THRESHOLDS.map((_, t) =>
      averagePrecision(scores, Uint8Array.from(tp[t]!), Uint8Array.from(ig[t]!), numGt),
    );
    const ap5095 = numGt === 0 ? -1 : aps.reduce((s, v) => s + v.ap, 0) / aps.length;
    perClass.push({
      classId: cls,
      numGt,
      numDet,
      ap50: aps[0]!.ap,
      ap5095,
      precision: opTp + opFp > 0 ? opTp / (opTp + opFp) : 0,
      recall: numGt > 0 ? opTp / numGt : 0,
      pr50: aps[0]!.curve,
    });
    tpAll += opTp;
    fpAll += opFp;
    gtAll += numGt;
  }
  const valid = perClass.filter((c) => c.numGt > 0);
  const mean = (f: (c: ClassEvaluation) => number): number =>
    valid.length ? valid.reduce((s, c) => s + f(c), 0) / valid.length : 0;
  return {
    map50: mean((c) => c.ap50),
    map5095: mean((c) => c.ap5095),
    precision: tpAll + fpAll > 0 ? tpAll / (tpAll + fpAll) : 0,
    recall: gtAll > 0 ? tpAll / gtAll : 0,
    perClass,
  };
}
