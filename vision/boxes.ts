/** An axis-aligned box as `[x1, y1, x2, y2]` in pixels (top-left inclusive corner, bottom-right corner). */
export type Box = [number, number, number, number];

/** A box as `[cx, cy, w, h]`: centre and size, the YOLO/Ultralytics convention. */
export type CxCyWh = [number, number, number, number];

/** A box as `[x, y, w, h]`: top-left corner and size, the COCO convention. */
export type Xywh = [number, number, number, number];

/** Area of a box; zero for empty or inverted boxes. */
export function boxArea(b: Readonly<Box>): number {
  const w = b[2] - b[0];
  const h = b[3] - b[1];
  return w > 0 && h > 0 ? w * h : 0;
}

/** Intersection over union of two boxes (0 when either is empty). */
export function iou(a: Readonly<Box>, b: Readonly<Box>): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = boxArea(a) + boxArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** Clips a box to the image `[0, width] x [0, height]`. */
export function clipBox(b: Readonly<Box>, width: number, height: number): Box {
  return [
    Math.min(Math.max(b[0], 0), width),
    Math.min(Math.max(b[1], 0), height),
    Math.min(Math.max(b[2], 0), width),
    Math.min(Math.max(b[3], 0), height),
  ];
}

/** Converts centre/size to corners. */
export function cxcywhToXyxy(b: Readonly<CxCyWh>): Box {
  const hw = b[2] / 2;
  const hh = b[3] / 2;
  return [b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh];
}

/** Converts corners to centre/size. */
export function xyxyToCxcywh(b: Readonly<Box>): CxCyWh {
  return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]];
}

/** Converts COCO top-left/size to corners. */
export function xywhToXyxy(b: Readonly<Xywh>): Box {
  return [b[0], b[1], b[0] + b[2], b[1] + b[3]];
}

/** Converts corners to COCO top-left/size. */
export function xyxyToXywh(b: Readonly<Box>): Xywh {
  return [b[0], b[1], b[2] - b[0], b[3] - b[1]];
}

/** Scales a box by `sx` horizontally and `sy` vertically (e.g. normalised ↔ pixel coordinates). */
export function scaleBox(b: Readonly<Box>, sx: number, sy: number = sx): Box {
  return [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy];
}
