import { describe, expect, it } from 'vitest';
import { buildCocoJson, parseCoco } from './coco.js';
import { memoryFiles } from './files.fixtures.js';

const coco = {
  images: [
    { id: 10, file_name: 'a.jpg', width: 100, height: 50 },
    { id: 11, file_name: 'sub/b.jpg', width: 100, height: 50 },
    { id: 12, file_name: 'gone.jpg' },
  ],
  annotations: [
    { id: 1, image_id: 10, category_id: 7, bbox: [10, 5, 20, 10] },
    { id: 2, image_id: 10, category_id: 3, bbox: [0, 0, 5, 5], iscrowd: 1 },
    { id: 3, image_id: 11, category_id: 99, bbox: [0, 0, 5, 5] },
    { id: 4, image_id: 11, category_id: 3, bbox: 'nope' },
    { id: 5, image_id: 11, category_id: 3, bbox: [1, 1, 2, 2] },
  ],
  categories: [
    { id: 7, name: 'helmet' },
    { id: 3, name: 'head' },
  ],
};

describe('parseCoco', () => {
  it('maps sparse category ids to contiguous classes in id order and reports what it left out', async () => {
    const parsed = await parseCoco(
      memoryFiles({
        'annotations/instances_train.json': JSON.stringify(coco),
        'images/a.jpg': '',
        'images/sub/b.jpg': '',
        'images/stray.jpg': '',
      }),
    );
    expect(parsed.classNames).toEqual(['head', 'helmet']);
    const a = parsed.images.find((i) => i.image === 'images/a.jpg')!;
    expect(a).toMatchObject({ split: 'train', units: 'pixels', declaredWidth: 100 });
    expect(a.boxes).toEqual([{ classId: 1, x1: 10, y1: 5, x2: 30, y2: 15 }]);
    expect(parsed.images.find((i) => i.image === 'images/sub/b.jpg')!.boxes).toEqual([
      { classId: 0, x1: 1, y1: 1, x2: 3, y2: 3 },
    ]);
    const kinds = parsed.issues.map((i) => `${i.kind}@${i.at ?? i.file}`).sort();
    expect(kinds).toEqual([
      'bad_file@annotations[3]',
      'crowd_ignored@annotations[1]',
      'missing_image@images[2]',
      'missing_label@images/stray.jpg',
      'unknown_class@annotations[2]',
    ]);
  });

  it('reports invalid JSON and a folder without COCO files', async () => {
    const parsed = await parseCoco(memoryFiles({ 'x.json': '{oops', 'a.jpg': '' }));
    expect(parsed.issues.map((i) => i.kind)).toContain('bad_file');
    expect(parsed.issues.find((i) => i.file === 'x.json')?.message).toMatch(/not valid JSON/);
  });

  it('builds COCO JSON that parses back to the same boxes', async () => {
    const doc = buildCocoJson(
      ['a', 'b'],
      [
        {
          fileName: 'images/x.jpg',
          width: 200,
          height: 100,
          boxes: [{ classId: 1, x1: 0.1, y1: 0.2, x2: 0.5, y2: 0.6 }],
        },
      ],
    );
    const parsed = await parseCoco(
      memoryFiles({ 'annotations.json': JSON.stringify(doc), 'images/x.jpg': '' }),
    );
    expect(parsed.classNames).toEqual(['a', 'b']);
    expect(parsed.images[0]!.boxes[0]).toEqual({ classId: 1, x1: 20, y1: 20, x2: 100, y2: 60 });
  });
});
