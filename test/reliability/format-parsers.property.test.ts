import fc from 'fast-check';
import { stringify as stringifyYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  normalizeBoxes,
  parseCoco,
  parseVoc,
  parseYolo,
  parseYoloDataYaml,
  parseYoloLabels,
  type DatasetFiles,
  type FormatIssue,
  type ParsedDataset,
} from '../../vision/formats/index.js';

const KINDS = new Set([
  'bad_file',
  'malformed_line',
  'missing_label',
  'empty_label',
  'missing_image',
  'unknown_class',
  'box_out_of_range',
  'degenerate_box',
  'crowd_ignored',
  'unreadable_image',
  'image_too_large',
  'duplicate_image',
  'class_mismatch',
]);

const RUNS = { numRuns: 150 };

function memoryFiles(files: Record<string, string>): DatasetFiles {
  return {
    paths: Object.keys(files),
    readText: async (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
  };
}

/** Every issue is a structured problem a person can read: a known kind, a severity, a file and a message. */
function expectStructuredIssues(issues: readonly FormatIssue[]): void {
  for (const issue of issues) {
    expect(KINDS.has(issue.kind), `unknown issue kind ${issue.kind}`).toBe(true);
    expect(['error', 'warning']).toContain(issue.severity);
    expect(typeof issue.file).toBe('string');
    expect(issue.message.length).toBeGreaterThan(0);
    expect(issue.message).not.toMatch(/\n\s+at /);
  }
}

/** A parsed dataset is usable: class ids in range, boxes with finite coordinates. */
function expectConsistent(parsed: ParsedDataset): void {
  expectStructuredIssues(parsed.issues);
  for (const img of parsed.images) {
    for (const b of img.boxes) {
      expect(Number.isInteger(b.classId) && b.classId >= 0 && b.classId < parsed.classNames.length).toBe(
        true,
      );
      expect([b.x1, b.y1, b.x2, b.y2].every(Number.isFinite)).toBe(true);
    }
    const { boxes, issues } = normalizeBoxes(img, 640, 480);
    expectStructuredIssues(issues);
    for (const b of boxes) {
      expect(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= 1 && b.y2 <= 1 && b.x2 > b.x1 && b.y2 > b.y1).toBe(true);
    }
  }
}

const token = fc.oneof(
  fc.double().map(String),
  fc.integer({ min: -5, max: 20 }).map(String),
  fc.constantFrom('0', '1', '0.5', 'NaN', 'Infinity', '-0', '1e309', '0x10', '', '#', '\u0000', 'helmet'),
  fc.string({ maxLength: 6 }),
);
const labelLine = fc.oneof(
  fc.array(token, { minLength: 0, maxLength: 12 }).map((t) => t.join(' ')),
  fc
    .tuple(
      fc.integer({ min: 0, max: 3 }),
      fc.array(fc.double({ min: -0.5, max: 1.5, noNaN: true }), { minLength: 4, maxLength: 10 }),
    )
    .map(([c, xs]) => [c, ...xs].join(' ')),
);
const labelText = fc
  .array(labelLine, { maxLength: 8 })
  .chain((lines) => fc.constantFrom('\n', '\r\n').map((eol) => lines.join(eol)));

const yamlValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => stringifyYaml(v)),
  fc
    .record(
      {
        nc: fc.oneof(fc.integer({ min: -2, max: 20 }), fc.constantFrom(1e9, 2 ** 32, 1.5)),
        names: fc.oneof(
          fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 5 }),
          fc.dictionary(
            fc.oneof(
              fc.nat({ max: 10 }).map(String),
              fc.constantFrom('4294967296', '99999999', '-1', 'x', '1.5'),
            ),
            fc.string({ maxLength: 5 }),
            { maxKeys: 4 },
          ),
        ),
        train: fc.oneof(
          fc.string({ maxLength: 12 }),
          fc.constantFrom('images/train', '../train/images', '/abs', '..'),
        ),
        val: fc.oneof(fc.string({ maxLength: 12 }), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 })),
      },
      { requiredKeys: [] },
    )
    .map((v) => stringifyYaml(v)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom('names: [a, b\n', 'a: &x [*x]\n', '{{{', 'names: !!binary AAAA\n', '- - - -\n'),
);

const imageName = fc.constantFrom('a', 'b', 'c', 'x/y', '../z', 'd');
const fileName = (dir: string, ext: string) => imageName.map((n) => `${dir}${n}${ext}`);

describe('dataset format parsers under random input', () => {
  it('parseYoloLabels never throws and reports every bad line with its number', () => {
    fc.assert(
      fc.property(labelText, fc.option(fc.nat({ max: 5 }), { nil: undefined }), (text, classCount) => {
        const { boxes, issues } = parseYoloLabels(text, 'labels/a.txt', classCount);
        expectStructuredIssues(issues);
        for (const issue of issues) expect(issue.line).toBeGreaterThanOrEqual(1);
        for (const b of boxes) expect([b.x1, b.y1, b.x2, b.y2].every(Number.isFinite)).toBe(true);
      }),
      RUNS,
    );
  });

  it('parseYoloLabels turns a huge polygon and a huge class id into a result, not a crash', () => {
    const polygon = `0 ${Array.from({ length: 1_000_000 }, (_, i) => ((i % 100) / 100).toFixed(2)).join(' ')}`;
    const { boxes } = parseYoloLabels(polygon, 'labels/big.txt', 1);
    expect(boxes).toHaveLength(1);
    const hugeClass = parseYoloLabels('4294967296 0.5 0.5 0.1 0.1\n', 'labels/c.txt', undefined);
    expect(hugeClass.boxes).toHaveLength(0);
    expect(hugeClass.issues[0]).toMatchObject({ kind: 'unknown_class', line: 1 });
  });

  it('parseYoloDataYaml never throws on any YAML, including huge class indices and counts', () => {
    fc.assert(
      fc.property(yamlValue, (text) => {
        const meta = parseYoloDataYaml(text, 'data.yaml');
        expectStructuredIssues(meta.issues);
        expect((meta.classNames ?? []).length).toBeLessThanOrEqual(10_000);
      }),
      RUNS,
    );
    expect(parseYoloDataYaml('names: {4294967296: helmet}\n', 'data.yaml').issues[0]).toMatchObject({
      kind: 'bad_file',
      severity: 'error',
    });
    expect(parseYoloDataYaml('nc: 1000000000\n', 'data.yaml').issues[0]).toMatchObject({
      kind: 'bad_file',
      severity: 'error',
    });
  });

  it('parseYolo never throws on random trees of data.yaml, images and label files', async () => {
    const tree = fc.record({
      yaml: fc.option(yamlValue, { nil: undefined }),
      labels: fc.dictionary(fileName('labels/', '.txt'), labelText, { maxKeys: 4 }),
      images: fc.uniqueArray(fileName('images/', '.jpg'), { maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(tree, async ({ yaml, labels, images }) => {
        const files: Record<string, string> = { ...labels };
        if (yaml !== undefined) files['data.yaml'] = yaml;
        for (const img of images) files[img] = '';
        expectConsistent(await parseYolo(memoryFiles(files)));
      }),
      RUNS,
    );
  });

  it('parseYolo without a data.yaml survives a label with a huge class id', async () => {
    const parsed = await parseYolo(
      memoryFiles({ 'images/a.jpg': '', 'labels/a.txt': '99999999 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.2 0.2\n' }),
    );
    expect(parsed.classNames).toEqual(['class0']);
    expect(parsed.issues.some((i) => i.kind === 'unknown_class')).toBe(true);
  });

  it('parseCoco never throws on random JSON documents and reports what it skipped', async () => {
    const id = fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constantFrom('1', 'a', '__proto__'));
    const cocoish = fc.record(
      {
        images: fc.array(
          fc.oneof(
            fc.record(
              {
                id,
                file_name: fc.oneof(
                  imageName.map((n) => `${n}.jpg`),
                  fc.string({ maxLength: 6 }),
                ),
                width: fc.oneof(fc.double(), fc.nat()),
                height: fc.nat(),
              },
              { requiredKeys: [] },
            ),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          { maxLength: 5 },
        ),
        annotations: fc.array(
          fc.oneof(
            fc.record(
              {
                image_id: id,
                category_id: id,
                bbox: fc.oneof(
                  fc.array(fc.double(), { minLength: 4, maxLength: 4 }),
                  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 5 }),
                ),
                iscrowd: fc.oneof(fc.constantFrom(0, 1, true, false), fc.jsonValue({ maxDepth: 1 })),
              },
              { requiredKeys: [] },
            ),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          { maxLength: 8 },
        ),
        categories: fc.array(
          fc.oneof(
            fc.record({ id, name: fc.string({ maxLength: 6 }) }, { requiredKeys: [] }),
            fc.jsonValue({ maxDepth: 1 }),
          ),
          { maxLength: 4 },
        ),
      },
      { requiredKeys: [] },
    );
    const doc = fc.oneof(
      cocoish.map((v) => JSON.stringify(v)),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        '{"images": [], "categories": [], "annotations": [{"bbox": [1e999, 0, 1, 1]}]}',
        '[[[[[[',
        '\uFEFF{}',
        'null',
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fileName('', '.json'), doc, { minKeys: 1, maxKeys: 2 }),
        fc.uniqueArray(
          imageName.map((n) => `${n}.jpg`),
          { maxLength: 4 },
        ),
        async (jsons, images) => {
          const files: Record<string, string> = { ...jsons };
          for (const img of images) files[img] = '';
          expectConsistent(await parseCoco(memoryFiles(files)));
        },
      ),
      RUNS,
    );
  });

  it('parseVoc never throws on random XML and reports what it skipped', async () => {
    const num = fc.oneof(
      fc.double().map(String),
      fc.integer({ min: -10, max: 700 }).map(String),
      fc.constantFrom('', 'abc', '1e999', 'NaN'),
    );
    const object = fc
      .record({
        name: fc.oneof(fc.constantFrom('helmet', 'head', ''), fc.string({ maxLength: 5 })),
        xmin: num,
        ymin: num,
        xmax: num,
        ymax: num,
        difficult: fc.constantFrom('0', '1', 'x'),
      })
      .map(
        (o) =>
          `<object><name>${escapeXml(o.name)}</name><difficult>${o.difficult}</difficult><bndbox><xmin>${o.xmin}</xmin><ymin>${o.ymin}</ymin><xmax>${o.xmax}</xmax><ymax>${o.ymax}</ymax></bndbox></object>`,
      );
    const annotation = fc
      .record({ file: imageName, objects: fc.array(object, { maxLength: 4 }), width: num, height: num })
      .map(
        (a) =>
          `<annotation><filename>${a.file}.jpg</filename><size><width>${a.width}</width><height>${a.height}</height></size>${a.objects.join('')}</annotation>`,
      );
    const xml = fc.oneof(
      annotation,
      fc.string({ maxLength: 60 }),
      fc.constantFrom(
        '<annotation>',
        '<annotation><object></object></annotation>',
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "&x;&x;">]><annotation>&x;</annotation>',
        '<a><b></a>',
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fileName('Annotations/', '.xml'), xml, { maxKeys: 3 }),
        fc.uniqueArray(fileName('JPEGImages/', '.jpg'), { maxLength: 4 }),
        fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
        fc.option(fc.array(fc.constantFrom('helmet', 'head'), { minLength: 1, maxLength: 2 }), {
          nil: undefined,
        }),
        async (xmls, images, trainList, classNames) => {
          const files: Record<string, string> = { ...xmls };
          for (const img of images) files[img] = '';
          if (trainList !== undefined) files['ImageSets/Main/train.txt'] = trainList;
          expectConsistent(
            await parseVoc(
              memoryFiles(files),
              classNames === undefined ? {} : { classNames: [...new Set(classNames)] },
            ),
          );
        },
      ),
      RUNS,
    );
  });
});

function escapeXml(s: string): string {
  return s.replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`);
}
