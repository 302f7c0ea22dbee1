import { describe, expect, it } from 'vitest';
import {
  formatYoloDataYaml,
  formatYoloLabels,
  parseYolo,
  parseYoloDataYaml,
  parseYoloLabels,
  yoloLabelPathFor,
} from './yolo.js';
import { memoryFiles } from './files.fixtures.js';

describe('parseYoloDataYaml', () => {
  it('reads names as a list or as an index map', () => {
    expect(parseYoloDataYaml('nc: 2\nnames: [helmet, head]\n', 'data.yaml').classNames).toEqual([
      'helmet',
      'head',
    ]);
    expect(parseYoloDataYaml('names:\n  0: helmet\n  1: head\n', 'data.yaml').classNames).toEqual([
      'helmet',
      'head',
    ]);
  });

  it('reports nc that disagrees with names, bad YAML and wrong types instead of throwing', () => {
    expect(parseYoloDataYaml('nc: 3\nnames: [a, b]\n', 'd.yaml').issues[0]).toMatchObject({
      kind: 'class_mismatch',
      file: 'd.yaml',
    });
    expect(parseYoloDataYaml('names: [a, b\n', 'd.yaml').issues[0]).toMatchObject({
      kind: 'bad_file',
      severity: 'error',
    });
    expect(parseYoloDataYaml('nc: lots\n', 'd.yaml').issues[0]?.message).toMatch(/nc/);
  });
});

describe('parseYoloLabels', () => {
  it('turns centre boxes into corners and reports bad lines with their line number', () => {
    const { boxes, issues } = parseYoloLabels(
      '0 0.5 0.5 0.2 0.4\n\n1 0.1 0.1 oops 0.1\n7 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n',
      'labels/a.txt',
      2,
    );
    expect(boxes).toHaveLength(1);
    expect(boxes[0]!.x1).toBeCloseTo(0.4);
    expect(boxes[0]!.y2).toBeCloseTo(0.7);
    expect(issues.map((i) => [i.kind, i.line])).toEqual([
      ['malformed_line', 3],
      ['unknown_class', 4],
      ['malformed_line', 5],
    ]);
  });
});

describe('parseYolo', () => {
  it('maps images to labels in split folders and flags missing and empty label files', async () => {
    const parsed = await parseYolo(
      memoryFiles({
        'data.yaml': 'train: images/train\nval: images/val\nnames: [a, b]\n',
        'images/train/1.jpg': '',
        'images/train/2.png': '',
        'images/val/3.jpg': '',
        'labels/train/1.txt': '1 0.5 0.5 0.5 0.5\n',
        'labels/val/3.txt': '',
      }),
    );
    expect(parsed.classNames).toEqual(['a', 'b']);
    expect(parsed.images.map((i) => [i.image, i.split, i.boxes.length])).toEqual([
      ['images/train/1.jpg', 'train', 1],
      ['images/train/2.png', 'train', 0],
      ['images/val/3.jpg', 'val', 0],
    ]);
    expect(parsed.issues.map((i) => i.kind).sort()).toEqual(['empty_label', 'missing_label']);
  });

  it('reads a flat images/ folder without splits and Roboflow-style train/images folders', async () => {
    const flat = await parseYolo(
      memoryFiles({
        'data.yaml': 'train: images\nval: images\nnames: [x]\n',
        'images/a.jpg': '',
        'labels/a.txt': '0 .5 .5 .1 .1',
      }),
    );
    expect(flat.images[0]).toMatchObject({ image: 'images/a.jpg', split: undefined });
    const rf = await parseYolo(
      memoryFiles({
        'data.yaml': 'train: ../train/images\nval: ../valid/images\nnames: [x]\n',
        'valid/images/a.jpg': '',
        'valid/labels/a.txt': '0 .5 .5 .1 .1',
      }),
    );
    expect(rf.images[0]).toMatchObject({ split: 'val', labelFile: 'valid/labels/a.txt' });
    expect(rf.images[0]!.boxes).toHaveLength(1);
  });

  it('names classes class<N> when there is no data.yaml', async () => {
    const parsed = await parseYolo(memoryFiles({ 'images/a.jpg': '', 'labels/a.txt': '2 .5 .5 .1 .1' }));
    expect(parsed.classNames).toEqual(['class0', 'class1', 'class2']);
  });

  it('writes labels and data.yaml that parse back', async () => {
    const text = formatYoloLabels([{ classId: 1, x1: 0.1, y1: 0.2, x2: 0.5, y2: 0.6 }]);
    expect(text).toBe('1 0.300000 0.400000 0.400000 0.400000\n');
    const yaml = parseYoloDataYaml(formatYoloDataYaml(['a', 'b'], ['train', 'val']), 'data.yaml');
    expect(yaml.classNames).toEqual(['a', 'b']);
    expect(yaml.splitDirs).toEqual({ train: ['images/train'], val: ['images/val'] });
    expect(yoloLabelPathFor('ds/images/train/x.y.jpg')).toBe('ds/labels/train/x.y.txt');
  });
});

describe('parseYoloLabels with segmentation polygons', () => {
  it('turns a polygon line into its bounding box', () => {
    const { boxes, issues } = parseYoloLabels('2 0.1 0.2 0.5 0.25 0.3 0.6\n', 'a.txt', 3);
    expect(issues).toEqual([]);
    expect(boxes).toHaveLength(1);
    const b = boxes[0]!;
    expect(b.classId).toBe(2);
    expect(b.x1).toBeCloseTo(0.1);
    expect(b.y1).toBeCloseTo(0.2);
    expect(b.x2).toBeCloseTo(0.5);
    expect(b.y2).toBeCloseTo(0.6);
  });

  it('still refuses a line with an even number of values', () => {
    expect(parseYoloLabels('1 0.1 0.2 0.3 0.4 0.5\n', 'a.txt', 3).issues[0]?.kind).toBe('malformed_line');
  });
});
