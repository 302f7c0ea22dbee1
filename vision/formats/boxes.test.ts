import { describe, expect, it } from 'vitest';
import { normalizeBoxes } from './boxes.js';
import { detectFormat } from './detect.js';

describe('normalizeBoxes', () => {
  it('normalises pixel boxes, clips rounding overshoot and reports out-of-range and degenerate boxes', () => {
    const { boxes, issues } = normalizeBoxes(
      {
        image: 'a.jpg',
        units: 'pixels',
        boxes: [
          { classId: 0, x1: 10, y1: 10, x2: 60, y2: 35 },
          { classId: 0, x1: -1, y1: 0, x2: 100.5, y2: 50 },
          { classId: 1, x1: 10, y1: 10, x2: 400, y2: 20 },
          { classId: 1, x1: 10, y1: 10, x2: 10.2, y2: 20 },
        ],
      },
      100,
      50,
    );
    expect(boxes).toEqual([
      { classId: 0, x1: 0.1, y1: 0.2, x2: 0.6, y2: 0.7 },
      { classId: 0, x1: 0, y1: 0, x2: 1, y2: 1 },
    ]);
    expect(issues.map((i) => i.kind)).toEqual(['box_out_of_range', 'degenerate_box']);
  });
});

describe('detectFormat', () => {
  it('recognises each layout by its files', () => {
    expect(detectFormat(['data.yaml', 'images/a.jpg'])).toBe('yolo');
    expect(detectFormat(['labels/a.txt', 'images/a.jpg'])).toBe('yolo');
    expect(detectFormat(['annotations.json', 'a.jpg'])).toBe('coco');
    expect(detectFormat(['Annotations/a.xml', 'JPEGImages/a.jpg'])).toBe('voc');
    expect(detectFormat(['a.jpg'])).toBeUndefined();
  });
});
