import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isPlatformError } from '../../../core/errors.js';
import type { SearchDoc, SearchIndex } from './port.js';

/** Builds a SearchDoc with defaults for the fields a test does not care about. */
export function makeDoc(partial: Partial<SearchDoc> & Pick<SearchDoc, 'kind' | 'id'>): SearchDoc {
  return { projectId: 'p1', title: '', text: '', tags: [], fields: {}, updatedAt: 1_000, ...partial };
}

const DOCS: SearchDoc[] = [
  makeDoc({
    kind: 'dataset',
    id: 'helmets-v2',
    title: 'Helmets v2',
    text: 'Hard hat images from line 3, classes helmet and head',
    tags: ['ppe', 'line-3'],
    fields: { status: 'ready', images: 1200 },
    updatedAt: 5_000,
  }),
  makeDoc({
    kind: 'model',
    id: 'helmets-yolo',
    title: 'Helmet detector YOLO',
    text: 'trained on helmets-v2',
    tags: ['ppe'],
    fields: { status: 'deployed', framework: 'onnx' },
    updatedAt: 4_000,
  }),
  makeDoc({
    kind: 'job',
    id: 'job-1',
    title: 'Training run 1',
    text: 'epoch 3 loss 0.41 for the helmet detector',
    fields: { status: 'running' },
    updatedAt: 3_000,
  }),
  makeDoc({
    kind: 'device',
    id: 'jetson-7',
    title: 'Jetson line 3 camera',
    text: 'Orin nano',
    tags: ['line-3'],
    fields: { status: 'online', online: true },
    updatedAt: 2_000,
  }),
  makeDoc({
    kind: 'audit',
    id: 'a-1',
    projectId: 'p2',
    title: 'Deploy approved',
    text: 'forklift model rolled out',
    fields: { action: 'deploy' },
    updatedAt: 1_000,
  }),
];

const ids = (r: { hits: Array<{ kind: string; id: string }> }) => r.hits.map((h) => `${h.kind}:${h.id}`);

/**
 * The contract every SearchIndex adapter honours; each adapter's test calls this with its initializer.
 * `settle` makes earlier writes visible to queries (a refresh for Elasticsearch, nothing for MiniSearch).
 */
export function searchContract(
  name: string,
  init: () => Promise<{ index: SearchIndex; cleanup?: () => Promise<void> }>,
): void {
  describe(`SearchIndex contract: ${name}`, () => {
    let index: SearchIndex;
    let cleanup: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ index, cleanup } = await init());
    });
    afterAll(async () => {
      await cleanup?.();
      await index?.close();
    });
    beforeEach(async () => {
      await index.clear();
      await index.upsert(DOCS);
    });

    it('reports healthy', async () => {
      expect(await index.health()).toMatchObject({ port: 'search', ok: true });
    });

    it('finds documents by a word in title, text or tags, title matches first', async () => {
      const r = await index.query({ text: 'helmet' });
      expect(new Set(ids(r))).toEqual(new Set(['dataset:helmets-v2', 'model:helmets-yolo', 'job:job-1']));
      expect(r.total).toBe(3);
      expect(ids(r).indexOf('job:job-1')).toBe(2);
      expect(r.hits[0]!.score).toBeGreaterThan(0);
      expect(ids(await index.query({ text: 'ppe' })).sort()).toEqual([
        'dataset:helmets-v2',
        'model:helmets-yolo',
      ]);
    });

    it('matches word prefixes and small typos', async () => {
      expect(ids(await index.query({ text: 'forkl' }))).toEqual(['audit:a-1']);
      expect(ids(await index.query({ text: 'forklitf' }))).toEqual(['audit:a-1']);
    });

    it('requires every word of the query', async () => {
      expect(ids(await index.query({ text: 'jetson camera' }))).toEqual(['device:jetson-7']);
      expect(ids(await index.query({ text: 'helmet forklift' }))).toEqual([]);
    });

    it('filters by kinds, project, exact fields and tags', async () => {
      expect(ids(await index.query({ text: 'helmet', kinds: ['model', 'job'] })).sort()).toEqual([
        'job:job-1',
        'model:helmets-yolo',
      ]);
      expect(ids(await index.query({ projectId: 'p2' }))).toEqual(['audit:a-1']);
      expect(ids(await index.query({ filters: { status: 'running' } }))).toEqual(['job:job-1']);
      expect(ids(await index.query({ filters: { status: 'ready', images: 1200 } }))).toEqual([
        'dataset:helmets-v2',
      ]);
      expect(ids(await index.query({ filters: { online: true } }))).toEqual(['device:jetson-7']);
      expect(ids(await index.query({ filters: { status: 'read' } }))).toEqual([]);
      expect(ids(await index.query({ tags: ['line-3'] })).sort()).toEqual([
        'dataset:helmets-v2',
        'device:jetson-7',
      ]);
      expect(ids(await index.query({ tags: ['line-3', 'ppe'] }))).toEqual(['dataset:helmets-v2']);
    });

    it('finds training log lines of one job by its jobId field, each hit titled with its line', async () => {
      await index.upsert([
        makeDoc({
          kind: 'training_log',
          id: 'job-1:1:0:1',
          title: 'warning: loss is nan at batch 4',
          text: 'warning: loss is nan at batch 4',
          fields: { jobId: 'job-1', attempt: 1, seq: 0, line: 1 },
        }),
        makeDoc({
          kind: 'training_log',
          id: 'job-2:1:0:0',
          title: 'loss is nan again',
          text: 'loss is nan again',
          fields: { jobId: 'job-2', attempt: 1, seq: 0, line: 0 },
        }),
      ]);
      const r = await index.query({ text: 'nan', kinds: ['training_log'], filters: { jobId: 'job-1' } });
      expect(ids(r)).toEqual(['training_log:job-1:1:0:1']);
      expect(r.hits[0]).toMatchObject({
        title: 'warning: loss is nan at batch 4',
        fields: { jobId: 'job-1', attempt: 1, seq: 0, line: 1 },
      });
      // log lines stay out of other kinds' searches
      expect(ids(await index.query({ text: 'nan', kinds: ['job'] }))).toEqual([]);
    });

    it('lists everything newest first when there is no text, with fields and tags in each hit', async () => {
      const r = await index.query({});
      expect(r.total).toBe(5);
      expect(ids(r)).toEqual([
        'dataset:helmets-v2',
        'model:helmets-yolo',
        'job:job-1',
        'device:jetson-7',
        'audit:a-1',
      ]);
      expect(r.hits[0]).toMatchObject({
        title: 'Helmets v2',
        fields: { status: 'ready', images: 1200 },
        tags: ['ppe', 'line-3'],
      });
    });

    it('pages with offset and limit while total counts every match', async () => {
      const page1 = await index.query({ limit: 2 });
      const page2 = await index.query({ limit: 2, offset: 2 });
      const page3 = await index.query({ limit: 2, offset: 4 });
      expect(page1.total).toBe(5);
      expect(page3.total).toBe(5);
      expect([...ids(page1), ...ids(page2), ...ids(page3)]).toEqual(ids(await index.query({})));
      expect(page3.hits).toHaveLength(1);
      expect((await index.query({ offset: 50 })).hits).toEqual([]);
    });

    it('replaces a document on upsert and keeps kinds apart', async () => {
      await index.upsert([
        makeDoc({
          kind: 'job',
          id: 'job-1',
          title: 'Training run 1',
          text: 'finished',
          fields: { status: 'done' },
          updatedAt: 9_000,
        }),
      ]);
      await index.upsert([
        makeDoc({ kind: 'model', id: 'job-1', title: 'A model named like a job', updatedAt: 8_000 }),
      ]);
      expect(ids(await index.query({ filters: { status: 'running' } }))).toEqual([]);
      expect(ids(await index.query({ text: 'finished' }))).toEqual(['job:job-1']);
      expect((await index.query({})).total).toBe(6);
    });

    it('removes documents, ignoring ones that are not there', async () => {
      await index.remove([
        { kind: 'model', id: 'helmets-yolo' },
        { kind: 'model', id: 'never-indexed' },
      ]);
      expect(ids(await index.query({ text: 'helmet' })).sort()).toEqual(['dataset:helmets-v2', 'job:job-1']);
    });

    it('clears everything', async () => {
      await index.clear();
      expect(await index.query({})).toEqual({ total: 0, hits: [] });
      await index.upsert([DOCS[0]!]);
      expect((await index.query({})).total).toBe(1);
    });

    it('rejects malformed queries and documents with invalid_input', async () => {
      for (const bad of [
        { limit: 0 },
        { limit: 1000 },
        { offset: -1 },
        { offset: 9_990, limit: 20 },
        { kinds: ['nope'] },
      ]) {
        const err = await index.query(bad as never).catch((e: unknown) => e);
        expect(isPlatformError(err, 'invalid_input'), JSON.stringify(bad)).toBe(true);
      }
      const err = await index.upsert([{ ...DOCS[0]!, kind: 'nope' as never }]).catch((e: unknown) => e);
      expect(isPlatformError(err, 'invalid_input')).toBe(true);
    });
  });
}
