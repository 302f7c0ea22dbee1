import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallContext } from '../core/context.js';
import { EventBus } from '../core/events.js';
import { silentLogger } from '../core/log.js';
import { makeEnvelope, type MessagePayload, type MessageType } from '../protocol/envelope.js';
import { jpeg, makeService, writeTree } from '../services/datasets/datasets.fixtures.js';
import { MemoryBroker } from '../services/infra/broker/memory.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { MiniSearchIndex } from '../services/infra/search/minisearch.js';
import { SearchIndexer } from '../services/infra/search/outbox.js';
import { ModelRegistry } from '../services/models/model.registry.js';
import type { ModelEvent } from '../services/models/events.js';
import type { TrainingEvent } from '../services/training/events.js';
import { trainingLogSearchDocs } from '../services/training/training.search.js';
import { TrainingService } from '../services/training/training.service.js';
import type { ToolContext } from './define.js';
import { ToolRegistry } from './registry.js';
import { runTool } from './run-tool.js';
import { searchTrainingLogsTool } from './search.tools.js';
import { governanceFixture, toolServicesFixture } from './services.fixtures.js';

const log = silentLogger();
const tele = <T extends MessageType>(type: T, payload: MessagePayload<T>) =>
  makeEnvelope(type, payload, { source: 'gpu-test' });

describe('search_training_logs', () => {
  let work: string;
  let db: SqliteDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let broker: MemoryBroker;
  let training: TrainingService;
  let index: MiniSearchIndex;
  let indexer: SearchIndexer;
  let ctx: ToolContext;

  const indexed = async () => {
    while ((await indexer.drainOnce()) > 0);
  };

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'vtools-logs-'));
    db = new SqliteDb({ file: path.join(work, 'platform.db') });
    await db.migrate();
    env = await makeService(db);
    const alice: CallContext = {
      user: { userId: 'alice', email: 'alice@x.test', name: 'alice', role: 'operator', kind: 'user' },
      projectId: 'default',
      requestId: 'r',
      log,
    };
    await writeTree(path.join(work, 'helmets'), {
      'data.yaml': 'names: [helmet, head]\n',
      'images/train/a.jpg': await jpeg(64, 48, 1),
      'labels/train/a.txt': '0 0.5 0.5 0.2 0.2\n',
      'images/val/b.jpg': await jpeg(64, 48, 2),
      'labels/val/b.txt': '1 0.4 0.4 0.2 0.2\n',
    });
    await env.sut.import(alice, {
      name: 'helmets-v2',
      source: { kind: 'folder', path: path.join(work, 'helmets') },
    });
    broker = new MemoryBroker();
    training = new TrainingService({
      db,
      broker,
      storage: env.storage,
      events: new EventBus<TrainingEvent>(),
      log,
      datasets: env.sut,
      models: new ModelRegistry({ db, events: new EventBus<ModelEvent>(), log }),
      heartbeatTimeoutMs: 60_000,
      maxAttempts: 1,
    });
    index = new MiniSearchIndex();
    indexer = new SearchIndexer({ db, index, log });
    ctx = {
      ...alice,
      services: toolServicesFixture({ ...governanceFixture(db, log), training, search: index }),
      registry: new ToolRegistry([searchTrainingLogsTool]),
    };
  });

  afterEach(async () => {
    await broker.close();
    await env.cleanup();
    await db.close();
    await rm(work, { recursive: true, force: true });
  });

  it("finds a job's log lines through the search index, only in the caller's project, and after a full reindex", async () => {
    await training.handleTelemetry(
      tele('runner.heartbeat', {
        runnerId: 'gpu-1',
        backends: ['builtin'],
        device: { kind: 'cpu', name: 't' },
      }),
    );
    const job = await training.start(ctx, {
      dataset: 'helmets-v2',
      config: { backend: 'builtin', model: 'builtin-n', epochs: 3, imgsz: 64, batch: 2 },
    });
    const base = { jobId: job.id, attempt: 1 };
    await training.handleTelemetry(tele('train.status', { ...base, runnerId: 'gpu-1', status: 'running' }));
    await training.handleTelemetry(
      tele('train.log', {
        ...base,
        seq: 0,
        lines: ['epoch 1/3 box_loss 2.31', 'warning: loss is nan at batch 4'],
      }),
    );
    await training.handleTelemetry(
      tele('train.log', {
        ...base,
        seq: 1,
        lines: ['epoch 2/3 box_loss 1.90', 'early stop: val mAP50 flat'],
      }),
    );
    await indexed();

    const nan = await runTool(ctx, 'search_training_logs', { jobId: job.id, text: 'nan' });
    expect(nan).toEqual({
      ok: true,
      output: {
        jobId: job.id,
        total: 1,
        lines: [{ line: 'warning: loss is nan at batch 4', attempt: 1, position: 1 }],
      },
    });
    const boxLoss = await runTool(ctx, 'search_training_logs', { jobId: job.id, text: 'box_loss' });
    const found = (boxLoss as { output: { lines: Array<{ line: string }> } }).output.lines;
    expect(found.map((l) => l.line).sort()).toEqual(['epoch 1/3 box_loss 2.31', 'epoch 2/3 box_loss 1.90']);

    // another project's caller is told the job does not exist, and its index holds nothing of it
    const other = await runTool({ ...ctx, projectId: 'plant-b' }, 'search_training_logs', {
      jobId: job.id,
      text: 'nan',
    });
    expect(other).toMatchObject({ ok: false, error: { code: 'not_found' } });

    // the embedded index is rebuilt at start from the database and the stored log parts
    await index.clear();
    const docs = [];
    for await (const d of trainingLogSearchDocs(db, env.storage)) docs.push(d);
    await index.upsert(docs);
    expect(await runTool(ctx, 'search_training_logs', { jobId: job.id, text: 'early stop' })).toMatchObject({
      ok: true,
      output: { total: 1, lines: [{ line: 'early stop: val mAP50 flat', position: 10_001 }] },
    });
  });
});
