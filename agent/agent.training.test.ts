import { mkdtemp, rm } from 'node:fs/promises';
import { toolServicesFixture } from '../tools/services.fixtures.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApprovalService } from '../services/approvals/approval.service.js';
import type { ApprovalEvent } from '../services/approvals/events.js';
import { AuditLog } from '../services/audit/audit-log.js';
import type { CallContext } from '../core/context.js';
import { jpeg, makeService, writeTree } from '../services/datasets/datasets.fixtures.js';
import { EventBus } from '../core/events.js';
import { makeEnvelope, type MessagePayload, type MessageType } from '../protocol/envelope.js';
import { MemoryBroker } from '../services/infra/broker/memory.js';
import { SqliteDb } from '../services/infra/db/sqlite.js';
import { silentLogger } from '../core/log.js';
import type { ModelEvent } from '../services/models/events.js';
import { ModelRegistry } from '../services/models/model.registry.js';
import type { TrainingEvent } from '../services/training/events.js';
import { TrainingService } from '../services/training/training.service.js';
import { JOB_ARTIFACTS } from '../services/training/model.js';
import { createToolRegistry } from '../tools/index.js';
import type { ToolServices } from '../tools/services.js';
import { RulesPlanner } from './rules-planner.js';
import { AgentRuntime } from './runtime.js';
import { serviceCatalog } from './service-catalog.js';
import { trainingWaitSource } from './wait-sources.js';

const log = silentLogger();
const tele = <T extends MessageType>(type: T, payload: MessagePayload<T>) =>
  makeEnvelope(type, payload, { source: 'gpu-test' });

describe('AgentRuntime with the real datasets, training and model registry services', () => {
  let work: string;
  let db: SqliteDb;
  let env: Awaited<ReturnType<typeof makeService>>;
  let broker: MemoryBroker;
  let training: TrainingService;
  let runtime: AgentRuntime;
  let alice: CallContext;

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'vagent-train-'));
    db = new SqliteDb({ file: path.join(work, 'platform.db') });
    await db.migrate();
    env = await makeService(db);
    alice = {
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
    const audit = new AuditLog({ db, log });
    const approvalEvents = new EventBus<ApprovalEvent>();
    const trainingEvents = new EventBus<TrainingEvent>();
    const models = new ModelRegistry({ db, events: new EventBus<ModelEvent>(), log });
    training = new TrainingService({
      db,
      broker,
      storage: env.storage,
      events: trainingEvents,
      log,
      datasets: env.sut,
      models,
      heartbeatTimeoutMs: 60_000,
      maxAttempts: 1,
    });
    const services: ToolServices = toolServicesFixture({ audit, datasets: env.sut, training, models });
    const registry = createToolRegistry();
    services.approvals = new ApprovalService({
      db,
      audit,
      events: approvalEvents,
      log,
      strict: false,
      ttlMs: 3_600_000,
      validateArgs: (t, a) => registry.parseInput(t, a),
    });
    runtime = new AgentRuntime({
      db: db.kysely,
      registry,
      services,
      planner: new RulesPlanner(),
      // the catalog lists what this test has: datasets, models and jobs (no devices or rollouts)
      catalog: serviceCatalog({
        datasets: env.sut,
        training,
        models,
      } as Partial<ToolServices> as ToolServices),
      log,
      waitSources: [trainingWaitSource(training, models)],
      domainEvents: [approvalEvents, trainingEvents],
      pollIntervalMs: 0,
    });
    await runtime.start();
  });

  afterEach(async () => {
    await runtime.stop();
    await broker.close();
    await env.cleanup();
    await db.close();
    await rm(work, { recursive: true, force: true });
  });

  it('trains after approval, waits for the runner durably, and reports the registered version with its mAP', async () => {
    let view = await runtime.startConversation(alice, {
      message: 'train a helmet detector on dataset helmets-v2 for 3 epochs',
    });
    expect(view.pendingApproval).toMatchObject({
      tool: 'start_training',
      args: { dataset: 'helmets-v2', epochs: 3, backend: 'builtin' },
    });
    expect(await training.list(alice)).toHaveLength(0);

    view = await runtime.decide(alice, view.id, {
      approvalId: view.pendingApproval!.approvalId,
      decision: 'approve',
    });
    expect(view.status).toBe('waiting');
    const jobId = view.waitingFor!.id;
    expect(await training.get(alice, jobId)).toMatchObject({
      dataset: 'helmets-v2@1',
      threadId: view.id,
      requestedBy: 'alice',
    });

    // A runner takes the job and reports back over the broker contract.
    await training.handleTelemetry(
      tele('runner.heartbeat', {
        runnerId: 'gpu-1',
        backends: ['builtin'],
        device: { kind: 'cpu', name: 'test' },
      }),
    );
    const base = { jobId, attempt: 1 };
    await training.handleTelemetry(tele('train.status', { ...base, runnerId: 'gpu-1', status: 'running' }));
    await training.handleTelemetry(
      tele('train.metrics', { ...base, epoch: 1, epochs: 3, kind: 'epoch', metrics: { mAP50: 0.4 } }),
    );
    expect((await runtime.getThread(alice, view.id)).status).toBe('waiting');
    const onnx = await env.storage.put(`jobs/${jobId}/1/model.onnx`, Buffer.from('onnx bytes'));
    await training.handleTelemetry(
      tele('artifact.ready', {
        ...base,
        runnerId: 'gpu-1',
        artifacts: JOB_ARTIFACTS.map((name, i) =>
          name === 'model.onnx'
            ? { name, key: onnx.key, sha256: onnx.sha256, size: onnx.size }
            : { name, key: `jobs/${jobId}/1/${name}`, sha256: String(i).repeat(64), size: 10 },
        ),
        model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet', 'head'] },
        metrics: { mAP50: 0.62, mAP50_95: 0.31 },
        codeVersion: 'test',
      }),
    );
    await training.handleTelemetry(tele('train.status', { ...base, runnerId: 'gpu-1', status: 'succeeded' }));
    await runtime.settled();

    view = await runtime.getThread(alice, view.id);
    expect(view.status).toBe('done');
    expect(view.steps[0]?.result).toMatchObject({
      modelRef: 'helmets-v2-builtin@1',
      metrics: { mAP50: 0.62 },
    });
    expect(view.report).toMatch(/approved by alice \(operator\)/);
    expect(view.report).toMatch(/helmets-v2-builtin@1 \(mAP50 0\.620\)/);
    expect(view.report).toMatch(/mAP50-95 0\.310/);

    // The registered version is now a name the planner accepts.
    const next = await runtime.sendMessage(alice, view.id, 'explain helmets-v2-builtin@1');
    expect(next.steps[0]).toMatchObject({ tool: 'explain_model', state: 'done' });
    expect((next.steps[0]?.output as { text: string }).text).toMatch(
      /trained by job .* on helmets-v2@1 .*mAP50 0\.620/,
    );
  });
});
