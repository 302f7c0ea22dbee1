import { describe, expect, it } from 'vitest';
import { parseVoc } from './voc.js';
import { memoryFiles } from './files.fixtures.js';

const xml = (file: string, objects: string) =>
  `<annotation><folder>JPEGImages</folder><filename>${file}</filename><size><width>200</width><height>100</height><depth>3</depth></size>${objects}</annotation>`;
const obj = (name: string, box: [number, number, number, number], difficult = 0) =>
  `<object><name>${name}</name><difficult>${difficult}</difficult><bndbox><xmin>${box[0]}</xmin><ymin>${box[1]}</ymin><xmax>${box[2]}</xmax><ymax>${box[3]}</ymax></bndbox></object>`;

describe('parseVoc', () => {
  it('reads objects, keeps the difficult flag, honours ImageSets splits and sorts class names', async () => {
    const parsed = await parseVoc(
      memoryFiles({
        'Annotations/a.xml': xml('a.jpg', obj('person', [1, 1, 50, 40]) + obj('helmet', [11, 21, 30, 40], 1)),
        'Annotations/b.xml': xml('b.jpg', obj('helmet', [1, 1, 10, 10])),
        'ImageSets/Main/train.txt': 'a\n',
        'ImageSets/Main/val.txt': 'b\n',
        'JPEGImages/a.jpg': '',
        'JPEGImages/b.jpg': '',
      }),
    );
    expect(parsed.classNames).toEqual(['helmet', 'person']);
    const a = parsed.images.find((i) => i.image === 'JPEGImages/a.jpg')!;
    expect(a.split).toBe('train');
    expect(a.boxes).toEqual([
      { classId: 1, x1: 0, y1: 0, x2: 50, y2: 40 },
      { classId: 0, x1: 10, y1: 20, x2: 30, y2: 40, difficult: true },
    ]);
    expect(parsed.images.find((i) => i.image === 'JPEGImages/b.jpg')!.split).toBe('val');
    expect(parsed.issues).toEqual([]);
  });

  it('reports unknown classes against a given list, broken XML, and images nobody annotates', async () => {
    const parsed = await parseVoc(
      memoryFiles({
        'Annotations/a.xml': xml('a.jpg', obj('dog', [1, 1, 5, 5]) + '<object><name>x</name></object>'),
        'Annotations/c.xml': '<annotation><filename>c.jpg</filename',
        'JPEGImages/a.jpg': '',
        'JPEGImages/z.jpg': '',
      }),
      { classNames: ['helmet'] },
    );
    expect(parsed.issues.map((i) => `${i.kind}:${i.file}`).sort()).toEqual([
      'bad_file:Annotations/a.xml',
      'bad_file:Annotations/c.xml',
      'missing_label:JPEGImages/z.jpg',
      'unknown_class:Annotations/a.xml',
    ]);
  });
});
