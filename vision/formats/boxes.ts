import type { FormatIssue, SourceBox, SourceImage } from './types.js';

/** A box in normalised corner form (0..1 of the image width and height) with a contiguous class id. */
export interface LabeledBox {
  classId: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  difficult?: boolean;
}

/** Overshoot past the image edge that is clipped rather than reported (annotation tools round). */
const EDGE_TOLERANCE = 0.01;

/**
 * Brings a source image's boxes to normalised corners using the real pixel size, clips rounding
 * overshoot, and reports boxes that are out of range or degenerate (under one pixel), leaving them out.
 */
export function normalizeBoxes(
  image: SourceImage,
  width: number,
  height: number,
): { boxes: LabeledBox[]; issues: FormatIssue[] } {
  const issues: FormatIssue[] = [];
  const boxes: LabeledBox[] = [];
  const file = image.labelFile ?? image.image;
  const sx = image.units === 'pixels' ? width : 1;
  const sy = image.units === 'pixels' ? height : 1;
  image.boxes.forEach((b: SourceBox, i) => {
    const n = { x1: b.x1 / sx, y1: b.y1 / sy, x2: b.x2 / sx, y2: b.y2 / sy };
    const where = `box ${i + 1} of ${image.image}`;
    if (
      [n.x1, n.y1, n.x2, n.y2].some(
        (v) => !Number.isFinite(v) || v < -EDGE_TOLERANCE || v > 1 + EDGE_TOLERANCE,
      )
    ) {
      issues.push({
        kind: 'box_out_of_range',
        severity: 'error',
        file,
        at: where,
        message: `${where} lies outside the image (${fmt(b)} in ${image.units})`,
      });
      return;
    }
    const c = { x1: clip(n.x1), y1: clip(n.y1), x2: clip(n.x2), y2: clip(n.y2) };
    if ((c.x2 - c.x1) * width < 1 || (c.y2 - c.y1) * height < 1) {
      issues.push({
        kind: 'degenerate_box',
        severity: 'error',
        file,
        at: where,
        message: `${where} has no area (${fmt(b)} in ${image.units})`,
      });
      return;
    }
    boxes.push({ classId: b.classId, ...c, ...(b.difficult ? { difficult: true } : {}) });
  });
  return { boxes, issues };
}

function clip(v: number): number {
  return Math.min(1, Math.max(0, v));
}

function fmt(b: SourceBox): string {
  return [b.x1, b.y1, b.x2, b.y2].map((v) => Number(v.toFixed(4))).join(', ');
}
