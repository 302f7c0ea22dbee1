import { describe, expect, it } from 'vitest';
import {
  boxArea,
  clipBox,
  cxcywhToXyxy,
  iou,
  scaleBox,
  xywhToXyxy,
  xyxyToCxcywh,
  xyxyToXywh,
  type Box,
} from './boxes.js';

describe('boxes', () => {
  it('computes IoU of overlapping, disjoint, identical and empty boxes', () => {
    // [0,0,10,10] vs [5,0,15,10]: intersection 5*10 = 50, union 100+100-50 = 150.
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 12);
    expect(iou([0, 0, 10, 10], [10, 10, 20, 20])).toBe(0);
    expect(iou([1, 2, 3, 4], [1, 2, 3, 4])).toBe(1);
    expect(iou([5, 5, 5, 5], [0, 0, 10, 10])).toBe(0);
    expect(boxArea([3, 3, 1, 1])).toBe(0);
  });

  it('clips to the image', () => {
    expect(clipBox([-5, 3, 700, 500], 640, 480)).toEqual([0, 3, 640, 480]);
  });

  it('round-trips between formats and scales', () => {
    const b: Box = [10, 20, 50, 100];
    expect(xyxyToCxcywh(b)).toEqual([30, 60, 40, 80]);
    expect(cxcywhToXyxy(xyxyToCxcywh(b))).toEqual(b);
    expect(xyxyToXywh(b)).toEqual([10, 20, 40, 80]);
    expect(xywhToXyxy(xyxyToXywh(b))).toEqual(b);
    expect(scaleBox([0.1, 0.2, 0.5, 1], 320, 160)).toEqual([32, 32, 160, 160]);
  });
});
