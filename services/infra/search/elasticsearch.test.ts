import { createRequire } from 'node:module';
import { Client } from '@elastic/elasticsearch';
import { beforeEach, describe, expect, it } from 'vitest';
import { isPlatformError } from '../../../core/errors.js';
import { ElasticsearchIndex, SEARCH_MAPPINGS } from './elasticsearch.js';
import { makeDoc } from './search.contract.js';

// Runs against @elastic/elasticsearch-mock, which mocks only the HTTP layer: these tests check the
// requests the adapter sends and how it maps responses. The contract's search semantics run against a
// real server in elasticsearch.int.test.ts (ELASTICSEARCH_URL).

// The mock is CommonJS and recognises error replies by the CommonJS build's classes, so both come through require.
const require = createRequire(import.meta.url);
const { errors } = require('@elastic/elasticsearch') as typeof import('@elastic/elasticsearch');
const Mock = require('@elastic/elasticsearch-mock') as typeof import('@elastic/elasticsearch-mock').default;
type Mock = InstanceType<typeof Mock>;

interface Seen {
  method: string;
  path: string;
  body: any;
  querystring: Record<string, string>;
}

describe(ElasticsearchIndex.name, () => {
  let mock: Mock;
  let seen: Seen[];
  let index: ElasticsearchIndex;
  // The mock keeps the first handler added for a route, so each route delegates to a replaceable reply.
  let putReply: () => unknown;
  let bulkReply: () => unknown;
  let searchReply: () => unknown;

  const record = (pattern: object) => {
    const p = pattern as Seen;
    seen.push({ method: p.method, path: p.path, body: p.body, querystring: p.querystring });
  };

  beforeEach(() => {
    mock = new Mock();
    seen = [];
    putReply = () => ({ acknowledged: true, index: 'vtest-search' });
    bulkReply = () => ({ took: 1, errors: false, items: [] });
    searchReply = () => ({ hits: { total: { value: 0, relation: 'eq' }, hits: [] } });
    mock.add({ method: 'PUT', path: '/vtest-search' }, (p) => {
      record(p);
      return putReply() as never;
    });
    mock.add({ method: 'POST', path: '/_bulk' }, (p) => {
      record(p);
      return bulkReply() as never;
    });
    mock.add({ method: ['GET', 'POST'], path: '/vtest-search/_search' }, (p) => {
      record(p);
      return searchReply() as never;
    });
    const client = new Client({
      node: 'http://localhost:9200',
      // The mock's Connection extends the CommonJS build's BaseConnection; only the type declarations differ.
      Connection: mock.getConnection() as never,
      maxRetries: 0,
    });
    index = new ElasticsearchIndex({ client, indexPrefix: 'vtest', refresh: 'wait_for' });
  });

  it('creates the index with its explicit mapping once, then bulk-indexes documents by kind:id', async () => {
    const doc = makeDoc({
      kind: 'dataset',
      id: 'helmets-v2',
      title: 'Helmets',
      tags: ['ppe'],
      fields: { status: 'ready' },
    });
    await index.upsert([doc]);
    await index.upsert([makeDoc({ kind: 'model', id: 'm1' })]);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'PUT /vtest-search',
      'POST /_bulk',
      'POST /_bulk',
    ]);
    expect(seen[0]!.body).toEqual({ settings: { number_of_shards: 1 }, mappings: SEARCH_MAPPINGS });
    expect(seen[1]!.body).toEqual([
      { index: { _index: 'vtest-search', _id: 'dataset:helmets-v2' } },
      { key: 'dataset:helmets-v2', ...doc },
    ]);
    expect(seen[1]!.querystring).toMatchObject({ refresh: 'wait_for' });
  });

  it('treats an index that already exists as created', async () => {
    putReply = () =>
      new errors.ResponseError({
        body: {
          error: { type: 'resource_already_exists_exception', reason: 'index [vtest-search] already exists' },
          status: 400,
        },
        statusCode: 400,
        warnings: null,
        meta: {} as never,
      });
    await index.upsert([makeDoc({ kind: 'job', id: 'j1' })]);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['PUT /vtest-search', 'POST /_bulk']);
    await index.upsert([makeDoc({ kind: 'job', id: 'j2' })]);
    expect(seen).toHaveLength(3);
  });

  it('sends deletes in one bulk request and ignores documents that were not there', async () => {
    bulkReply = () => ({
      took: 1,
      errors: true,
      items: [
        { delete: { _index: 'vtest-search', _id: 'job:j1', status: 200, result: 'deleted' } },
        { delete: { _index: 'vtest-search', _id: 'job:j2', status: 404, result: 'not_found' } },
      ],
    });
    await index.remove([
      { kind: 'job', id: 'j1' },
      { kind: 'job', id: 'j2' },
    ]);
    expect(seen.at(-1)!.body).toEqual([
      { delete: { _index: 'vtest-search', _id: 'job:j1' } },
      { delete: { _index: 'vtest-search', _id: 'job:j2' } },
    ]);
  });

  it('throws when some documents of a bulk request fail, naming the first', async () => {
    bulkReply = () => ({
      took: 1,
      errors: true,
      items: [
        { index: { _index: 'vtest-search', _id: 'job:j1', status: 201, result: 'created' } },
        {
          index: {
            _index: 'vtest-search',
            _id: 'job:j2',
            status: 400,
            error: { type: 'document_parsing_exception', reason: 'bad field' },
          },
        },
      ],
    });
    const err = await index
      .upsert([makeDoc({ kind: 'job', id: 'j1' }), makeDoc({ kind: 'job', id: 'j2' })])
      .catch((e: unknown) => e);
    expect(isPlatformError(err, 'internal')).toBe(true);
    expect((err as Error).message).toContain(
      '1 of 2 failed, first job:j2: document_parsing_exception: bad field',
    );
  });

  it('reports rejected bulk work (429) as unavailable so the outbox retries it', async () => {
    bulkReply = () => ({
      took: 1,
      errors: true,
      items: [
        {
          index: {
            _index: 'vtest-search',
            _id: 'job:j1',
            status: 429,
            error: { type: 'es_rejected_execution_exception', reason: 'queue full' },
          },
        },
      ],
    });
    const err = await index.upsert([makeDoc({ kind: 'job', id: 'j1' })]).catch((e: unknown) => e);
    expect(isPlatformError(err, 'unavailable')).toBe(true);
  });

  it('builds one multi_match + bool.filter query with from/size and total hits, and maps the response', async () => {
    searchReply = () => ({
      took: 2,
      timed_out: false,
      hits: {
        total: { value: 42, relation: 'eq' },
        max_score: 3.2,
        hits: [
          {
            _index: 'vtest-search',
            _id: 'model:m1',
            _score: 3.2,
            _source: {
              kind: 'model',
              id: 'm1',
              title: 'Helmet detector',
              tags: ['ppe'],
              fields: { status: 'deployed', epochs: 50 },
            },
          },
          {
            _index: 'vtest-search',
            _id: 'job:j1',
            _score: 1.1,
            _source: { kind: 'job', id: 'j1', title: 'Run', tags: [], fields: {} },
          },
        ],
      },
    });
    const result = await index.query({
      text: ' helmet det ',
      kinds: ['model', 'job'],
      projectId: 'p1',
      filters: { status: 'deployed', epochs: 50, live: true },
      tags: ['ppe'],
      offset: 20,
      limit: 10,
    });
    expect(result).toEqual({
      total: 42,
      hits: [
        {
          kind: 'model',
          id: 'm1',
          title: 'Helmet detector',
          score: 3.2,
          tags: ['ppe'],
          fields: { status: 'deployed', epochs: 50 },
        },
        { kind: 'job', id: 'j1', title: 'Run', score: 1.1, tags: [], fields: {} },
      ],
    });
    const body = seen.at(-1)!.body;
    expect(body).toMatchObject({
      from: 20,
      size: 10,
      track_total_hits: true,
      sort: ['_score', { updatedAt: 'desc' }, { key: 'asc' }],
    });
    expect(body.query.bool.filter).toEqual([
      { terms: { kind: ['model', 'job'] } },
      { term: { projectId: 'p1' } },
      { term: { 'fields.status': 'deployed' } },
      { term: { 'fields.epochs': '50' } },
      { term: { 'fields.live': 'true' } },
      { term: { tags: 'ppe' } },
    ]);
    const should = body.query.bool.must[0].bool.should;
    expect(should).toEqual([
      {
        multi_match: {
          query: 'helmet det',
          type: 'bool_prefix',
          fields: ['title^2', 'text', 'all'],
          operator: 'and',
          fuzziness: 'AUTO',
        },
      },
      {
        multi_match: {
          query: 'helmet det',
          type: 'best_fields',
          fields: ['title^2', 'text', 'all'],
          operator: 'and',
          fuzziness: 'AUTO',
        },
      },
    ]);
  });

  it('searches training log lines of one job: kind and jobId filters, the line as the hit title', async () => {
    searchReply = () => ({
      took: 1,
      timed_out: false,
      hits: {
        total: { value: 1, relation: 'eq' },
        max_score: 2,
        hits: [
          {
            _index: 'vtest-search',
            _id: 'training_log:job_1:1:0:1',
            _score: 2,
            _source: {
              kind: 'training_log',
              id: 'job_1:1:0:1',
              title: 'warning: loss is nan',
              tags: [],
              fields: { jobId: 'job_1', attempt: 1, seq: 0, line: 1 },
            },
          },
        ],
      },
    });
    const r = await index.query({
      text: 'nan',
      kinds: ['training_log'],
      projectId: 'p1',
      filters: { jobId: 'job_1' },
    });
    expect(r.hits).toEqual([
      {
        kind: 'training_log',
        id: 'job_1:1:0:1',
        title: 'warning: loss is nan',
        score: 2,
        tags: [],
        fields: { jobId: 'job_1', attempt: 1, seq: 0, line: 1 },
      },
    ]);
    expect(seen.at(-1)!.body.query.bool.filter).toEqual([
      { terms: { kind: ['training_log'] } },
      { term: { projectId: 'p1' } },
      { term: { 'fields.jobId': 'job_1' } },
    ]);
  });

  it('lists newest first without a text query', async () => {
    expect(await index.query({})).toEqual({ total: 0, hits: [] });
    const body = seen.at(-1)!.body;
    expect(body).toMatchObject({
      from: 0,
      size: 20,
      query: { bool: { must: [], filter: [] } },
      sort: [{ updatedAt: 'desc' }, { key: 'asc' }],
    });
  });

  it('validates queries before sending anything', async () => {
    const err = await index.query({ limit: 500 }).catch((e: unknown) => e);
    expect(isPlatformError(err, 'invalid_input')).toBe(true);
    expect(seen).toEqual([]);
  });

  it('clears by deleting the index and recreates it on the next write', async () => {
    mock.add({ method: 'DELETE', path: '/vtest-search' }, (p) => {
      record(p);
      return { acknowledged: true };
    });
    await index.upsert([makeDoc({ kind: 'job', id: 'j1' })]);
    await index.clear();
    await index.upsert([makeDoc({ kind: 'job', id: 'j1' })]);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'PUT /vtest-search',
      'POST /_bulk',
      'DELETE /vtest-search',
      'PUT /vtest-search',
      'POST /_bulk',
    ]);
  });

  it('maps a server error to unavailable and a bad request to internal', async () => {
    searchReply = () =>
      new errors.ResponseError({
        body: { error: { type: 'search_phase_execution_exception', reason: 'all shards failed' } },
        statusCode: 503,
        warnings: null,
        meta: {} as never,
      });
    const err = await index.query({ text: 'x' }).catch((e: unknown) => e);
    expect(isPlatformError(err, 'unavailable')).toBe(true);
    expect((err as Error).message).toContain('all shards failed');
    searchReply = () =>
      new errors.ResponseError({
        body: { error: { type: 'parsing_exception', reason: 'unknown query' } },
        statusCode: 400,
        warnings: null,
        meta: {} as never,
      });
    expect(isPlatformError(await index.query({ text: 'x' }).catch((e: unknown) => e), 'internal')).toBe(true);
  });

  it('reports health from a ping', async () => {
    mock.add({ method: 'HEAD', path: '/' }, () => '');
    expect(await index.health()).toEqual({ port: 'search', adapter: 'elasticsearch', ok: true });
  });
});

describe(`${ElasticsearchIndex.name} with Elasticsearch down`, () => {
  it('fails with unavailable naming ELASTICSEARCH_URL and hides credentials', async () => {
    // Port 1 on localhost refuses connections, standing in for a stopped Elasticsearch.
    const index = new ElasticsearchIndex({
      url: 'http://elastic:s3cret@127.0.0.1:1',
      requestTimeoutMs: 1000,
      maxRetries: 0,
    });
    try {
      const err = await index.query({ text: 'x' }).catch((e: unknown) => e);
      expect(isPlatformError(err, 'unavailable')).toBe(true);
      expect((err as Error).message).toContain('ELASTICSEARCH_URL');
      expect((err as Error).message).not.toContain('s3cret');
      const health = await index.health();
      expect(health.ok).toBe(false);
      expect(health.detail).toContain('ELASTICSEARCH_URL');
    } finally {
      await index.close();
    }
  });
});
