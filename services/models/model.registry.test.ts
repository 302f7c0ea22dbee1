import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallContext, Role } from '../../core/context.js';
import { isPlatformError } from '../../core/errors.js';
import { EventBus } from '../../core/events.js';
import type { MessagePayload } from '../../protocol/envelope.js';
import { SqliteDb } from '../infra/db/sqlite.js';
import { silentLogger } from '../../core/log.js';
import type { ModelEvent } from './events.js';
import { modelNameFrom, ModelRegistry, modelSearchDocs } from './model.registry.js';
import { type RegisterArtifactInput } from './model.js';

const sha = (c: string) => c.repeat(64);

function ctxFor(role: Role, projectId = 'p1'): CallContext {
  return {
    user: { userId: `u_${role}`, email: `${role}@x.test`, name: role, role, kind: 'user' },
    projectId,
    requestId: 'r',
    log: silentLogger(),
  };
}

function artifact(
  jobId: string,
  metrics: Record<string, number>,
  perClass?: Record<string, Record<string, number>>,
): MessagePayload<'artifact.ready'> {
  return {
    jobId,
    attempt: 1,
    runnerId: 'gpu-1',
    artifacts: [
      { name: 'model.onnx', key: `jobs/${jobId}/1/model.onnx`, sha256: sha('a'), size: 1234 },
      { name: 'metrics.json', key: `jobs/${jobId}/1/metrics.json`, sha256: sha('b'), size: 56 },
      { name: 'report.md', key: `jobs/${jobId}/1/report.md`, sha256: sha('c'), size: 78 },
    ],
    model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet', 'head'] },
    metrics,
    ...(perClass === undefined ? {} : { perClass }),
    codeVersion: 'abc123',
  };
}

function input(
  jobId: string,
  metrics: Record<string, number>,
  perClass?: Record<string, Record<string, number>>,
  name = 'helmets-demo-builtin',
): RegisterArtifactInput {
  return {
    projectId: 'p1',
    name,
    job: {
      id: jobId,
      attempt: 1,
      runnerId: 'gpu-1',
      config: { backend: 'builtin', model: 'tiny', epochs: 5, imgsz: 320, batch: 8 },
      dataset: { name: 'helmets-demo', version: 2 },
    },
    artifact: artifact(jobId, metrics, perClass),
    createdBy: 'u_operator',
  };
}

describe(ModelRegistry.name, () => {
  let dir: string;
  let db: SqliteDb;
  let events: ModelEvent[];
  let clock: number;
  let sut: ModelRegistry;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'models-'));
    db = new SqliteDb({ file: path.join(dir, 'm.db') });
    await db.migrate();
    events = [];
    const bus = new EventBus<ModelEvent>();
    bus.on((e) => events.push(e));
    clock = 1_700_000_000_000;
    sut = new ModelRegistry({ db, events: bus, log: silentLogger(), now: () => clock++ });
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers a version per job with artifacts, metrics and lineage, numbered per name', async () => {
    const { version: v1, created } = await sut.registerFromArtifact(
      input('job_1', { mAP50: 0.5, mAP50_95: 0.3 }),
    );
    const { version: v2 } = await sut.registerFromArtifact(input('job_2', { mAP50: 0.6, mAP50_95: 0.35 }));
    const { version: other } = await sut.registerFromArtifact(
      input('job_3', { mAP50: 0.1 }, undefined, 'vests'),
    );
    expect(created).toBe(true);
    expect([v1.ref, v2.ref, other.ref]).toEqual([
      'helmets-demo-builtin@1',
      'helmets-demo-builtin@2',
      'vests@1',
    ]);
    expect(v1).toMatchObject({
      model: {
        key: 'jobs/job_1/1/model.onnx',
        sha256: sha('a'),
        size: 1234,
        layout: 'ultralytics',
        inputSize: 320,
      },
      classNames: ['helmet', 'head'],
      metrics: { mAP50: 0.5, mAP50_95: 0.3 },
      lineage: {
        dataset: 'helmets-demo@2',
        jobId: 'job_1',
        attempt: 1,
        runnerId: 'gpu-1',
        codeVersion: 'abc123',
        config: { backend: 'builtin', epochs: 5 },
      },
      createdBy: 'u_operator',
    });
    expect(v1.artifacts.map((a) => [a.name, a.sha256])).toEqual([
      ['model.onnx', sha('a')],
      ['metrics.json', sha('b')],
      ['report.md', sha('c')],
    ]);
    expect(events.filter((e) => e.type === 'model.registered')).toHaveLength(3);
  });

  it('is idempotent per job', async () => {
    const a = await sut.registerFromArtifact(input('job_1', { mAP50: 0.5 }));
    const b = await sut.registerFromArtifact(input('job_1', { mAP50: 0.9 }));
    expect(b.created).toBe(false);
    expect(b.version.id).toBe(a.version.id);
    expect(b.version.metrics.mAP50).toBe(0.5);
    expect((await sut.list(ctxFor('viewer'))).length).toBe(1);
  });

  it('refuses an artifact set without an ONNX model', async () => {
    const bad = input('job_x', {});
    bad.artifact.artifacts = bad.artifact.artifacts.filter((a) => a.name !== 'model.onnx');
    await expect(sut.registerFromArtifact(bad)).rejects.toSatisfy(
      (e) => isPlatformError(e, 'invalid_input') && /no model\.onnx/.test(e.message),
    );
  });

  it('a promotion retried under the same idempotency key reports the first promotion and changes nothing more', async () => {
    const { version: v1 } = await sut.registerFromArtifact(input('job_1', { mAP50: 0.5 }));
    const { version: v2 } = await sut.registerFromArtifact(input('job_2', { mAP50: 0.6 }));
    await sut.promote(ctxFor('approver'), v1.ref, 'production');
    const keyed = { ...ctxFor('approver'), idempotencyKey: 'apr_promote_once' };
    const first = await sut.promote(keyed, 'helmets-demo-builtin@candidate', 'production');
    expect([first.version.id, first.previous?.id]).toEqual([v2.id, v1.id]);
    const again = await sut.promote(keyed, 'helmets-demo-builtin@candidate', 'production');
    expect([again.version.id, again.previous?.id]).toEqual([v2.id, v1.id]);
    expect(events.filter((e) => e.type === 'model.promoted')).toHaveLength(2);
  });

  it('makes each new version the candidate and promotes through staging to production with history', async () => {
    const { version: v1 } = await sut.registerFromArtifact(input('job_1', { mAP50: 0.5 }));
    const { version: v2 } = await sut.registerFromArtifact(input('job_2', { mAP50: 0.6 }));
    expect((await sut.get(ctxFor('viewer'), 'helmets-demo-builtin@candidate')).id).toBe(v2.id);
    await expect(sut.get(ctxFor('viewer'), 'helmets-demo-builtin@production')).rejects.toSatisfy(
      (e) => isPlatformError(e, 'not_found') && /no production version yet/.test(e.message),
    );

    await expect(sut.promote(ctxFor('viewer'), v1.ref, 'staging')).rejects.toSatisfy((e) =>
      isPlatformError(e, 'forbidden'),
    );
    await sut.promote(ctxFor('operator'), v1.ref, 'staging');
    await expect(sut.promote(ctxFor('operator'), v1.ref, 'production')).rejects.toSatisfy(
      (e) => isPlatformError(e, 'forbidden') && /approver/.test(e.message),
    );
    const first = await sut.promote(ctxFor('approver'), v1.ref, 'production');
    expect(first.previous).toBeNull();
    expect(first.version.stages).toEqual(['staging', 'production']);
    const second = await sut.promote(ctxFor('admin'), 'helmets-demo-builtin@2', 'production');
    expect(second.previous?.id).toBe(v1.id);
    expect((await sut.get(ctxFor('viewer'), 'helmets-demo-builtin@production')).id).toBe(v2.id);
    expect((await sut.get(ctxFor('viewer'), v1.id)).stages).toEqual(['staging']);
    expect(
      events
        .filter((e) => e.type === 'model.promoted')
        .map((e) => (e.type === 'model.promoted' ? [e.stage, e.version, e.by] : [])),
    ).toEqual([
      ['staging', 1, 'u_operator'],
      ['production', 1, 'u_approver'],
      ['production', 2, 'u_admin'],
    ]);
    const history = await sut.stageHistory(ctxFor('viewer'), 'helmets-demo-builtin');
    expect(history.map((h) => [h.stage, h.version, h.setBy])).toEqual([
      ['production', 2, 'u_admin'],
      ['production', 1, 'u_approver'],
      ['staging', 1, 'u_operator'],
      ['candidate', 2, 'system'],
      ['candidate', 1, 'system'],
    ]);
    expect(history[0]!.previousVersionId).toBe(v1.id);
    expect((await sut.list(ctxFor('viewer'), { stage: 'production' })).map((v) => v.id)).toEqual([v2.id]);
  });

  it('resolves name@N, name (latest), name@latest and ids, and names the known models when not found', async () => {
    const { version: v1 } = await sut.registerFromArtifact(input('job_1', { mAP50: 0.5 }));
    const { version: v2 } = await sut.registerFromArtifact(input('job_2', { mAP50: 0.6 }));
    const viewer = ctxFor('viewer');
    expect((await sut.get(viewer, 'helmets-demo-builtin@1')).id).toBe(v1.id);
    expect((await sut.get(viewer, 'helmets-demo-builtin')).id).toBe(v2.id);
    expect((await sut.get(viewer, 'helmets-demo-builtin@latest')).id).toBe(v2.id);
    expect((await sut.get(viewer, v1.id)).ref).toBe('helmets-demo-builtin@1');
    await expect(sut.get(viewer, 'helmets@1')).rejects.toSatisfy(
      (e) => isPlatformError(e, 'not_found') && /known models: helmets-demo-builtin/.test(e.message),
    );
    await expect(sut.get(viewer, 'helmets-demo-builtin@3')).rejects.toSatisfy((e) =>
      isPlatformError(e, 'not_found'),
    );
    await expect(sut.get(viewer, 'helmets-demo-builtin@prod')).rejects.toSatisfy((e) =>
      isPlatformError(e, 'invalid_input'),
    );
    await expect(sut.get(ctxFor('viewer', 'p2'), v1.id)).rejects.toSatisfy((e) =>
      isPlatformError(e, 'not_found'),
    );
  });

  it('compares two versions metric by metric, overall and per class', async () => {
    await sut.registerFromArtifact(
      input(
        'job_1',
        { mAP50: 0.5, precision: 0.7, recall: 0.6 },
        { helmet: { mAP50: 0.55 }, head: { mAP50: 0.45 } },
      ),
    );
    await sut.registerFromArtifact(
      input('job_2', { mAP50: 0.625, precision: 0.75, mAP50_95: 0.4 }, { helmet: { mAP50: 0.65 } }),
    );
    const c = await sut.compare(ctxFor('viewer'), 'helmets-demo-builtin@1', 'helmets-demo-builtin@2');
    expect(c.metrics).toEqual([
      { metric: 'mAP50', a: 0.5, b: 0.625, delta: 0.125 },
      { metric: 'mAP50_95', a: null, b: 0.4, delta: null },
      { metric: 'precision', a: 0.7, b: 0.75, delta: expect.closeTo(0.05, 10) },
      { metric: 'recall', a: 0.6, b: null, delta: null },
    ]);
    expect(c.perClass).toEqual([
      { className: 'head', metric: 'mAP50', a: 0.45, b: null, delta: null },
      { className: 'helmet', metric: 'mAP50', a: 0.55, b: 0.65, delta: expect.closeTo(0.1, 10) },
    ]);
    expect(c.sameDataset).toBe(true);
    expect(c.sameClasses).toBe(true);
  });

  it('feeds versions to search through the outbox and for a reindex', async () => {
    const { version } = await sut.registerFromArtifact(input('job_1', { mAP50: 0.5 }));
    await sut.promote(ctxFor('approver'), version.ref, 'production');
    const rows = await db.kysely
      .selectFrom('search_outbox')
      .selectAll()
      .where('kind', '=', 'model')
      .orderBy('seq')
      .execute();
    expect(rows.length).toBe(2);
    expect(JSON.parse(rows[1]!.doc!)).toMatchObject({
      id: version.id,
      title: 'helmets-demo-builtin@1',
      tags: expect.arrayContaining(['production', 'candidate', 'helmet']),
    });
    const docs = [];
    for await (const d of modelSearchDocs(db)) docs.push(d);
    expect(docs).toEqual([
      expect.objectContaining({
        kind: 'model',
        id: version.id,
        fields: expect.objectContaining({ dataset: 'helmets-demo@2', mAP50: 0.5 }),
      }),
    ]);
  });

  it('derives valid model names', () => {
    expect(modelNameFrom('Helmets V2-builtin')).toBe('helmets-v2-builtin');
    expect(modelNameFrom('--안전모--')).toBe('model');
  });
});
