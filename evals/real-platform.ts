import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AgentRuntime } from '../agent/runtime.js';
import type { Planner } from '../agent/planner.js';
import { serviceCatalog } from '../agent/service-catalog.js';
import { configSchema } from '../app/config.js';
import { systemPrincipal, type CallContext, type Role } from '../core/context.js';
import { makeEnvelope } from '../protocol/envelope.js';
import { silentLogger } from '../core/log.js';
import { registerFixtureModel, writeFixtureDataset } from '../services/models/models.fixtures.js';
import { createPlatform, type Platform } from '../app/platform.js';
import type { ToolRegistry } from '../tools/registry.js';

/** The real embedded platform the safety scenarios run against, seeded with the evaluation names. */
export interface EvalPlatform {
  platform: Platform;
  /** The planner under test, built on the platform's tool registry. */
  planner: Planner;
  /** An agent on the platform's own registry, services and database, with the planner under test. */
  runtime: AgentRuntime;
  ctx(userId: string, role: Role): CallContext;
  /** What a change would alter: datasets and versions, model versions and stages, jobs, rollouts, approved steps. */
  snapshot(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Builds the platform with `createPlatform` on embedded adapters in a temporary folder (every real
 * tool exists there: promotion, pause, resume, evaluation…), with datasets helmets-demo, helmets-v2
 * and ship-hulls (descriptions as given: injection text lives there), model versions helmets@1–3
 * (helmets@2 in production) and Jetsons tagged line-3, line-2 and ship-dock.
 */
export async function startEvalPlatform(
  makePlanner: (registry: ToolRegistry) => Promise<Planner>,
  descriptions: Record<string, string> = {},
): Promise<EvalPlatform> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'vision-evals-'));
  const log = silentLogger();
  const config = configSchema.parse({
    DATA_DIR: path.join(root, 'platform'),
    LOG_LEVEL: 'silent',
    EMBEDDED_GPU_RUNNER: 'false',
    SIMULATED_DEVICES: '0',
    DEMO_DATASET: 'false',
    IMPORT_ROOTS: path.join(root, 'imports'),
  });
  const platform = await createPlatform(config, log);
  await platform.prepare();
  const admin: CallContext = {
    user: { ...systemPrincipal(), role: 'admin' },
    projectId: 'default',
    requestId: 'eval-seed',
    log,
  };
  const folder = path.join(root, 'imports', 'fixture');
  await mkdir(folder, { recursive: true });
  await writeFixtureDataset(folder);
  for (const name of ['helmets-demo', 'helmets-v2', 'ship-hulls']) {
    await platform.datasets.import(
      { ...admin, requestId: `eval-seed-${name}` },
      {
        name,
        description: descriptions[name] ?? `${name} (evaluation fixture)`,
        source: { kind: 'folder', path: folder },
        format: 'yolo',
      },
    );
  }
  const bytes = Buffer.from('not a real detector: evaluation scenarios never run it');
  for (let i = 1; i <= 3; i += 1)
    await registerFixtureModel(platform.models, platform.infra.storage, bytes, `job_eval_${i}`, {
      name: 'helmets',
      dataset: { name: 'helmets-v2', version: 1 },
    });
  await platform.models.promote(admin, 'helmets@2', 'production');
  const devices: Array<[string, string[]]> = [
    ['jetson-l3-a', ['line-3', 'jetson']],
    ['jetson-l3-b', ['line-3', 'jetson']],
    ['jetson-l2-a', ['line-2', 'jetson']],
    ['cam-dock-a', ['ship-dock']],
  ];
  for (const [id, tags] of devices) {
    await platform.fleet.handleTelemetry(
      makeEnvelope(
        'device.heartbeat',
        {
          deviceId: id,
          name: id,
          tags,
          hardware: 'Jetson Orin Nano 8GB',
          runtime: { node: '20.11.0', onnxruntime: '1.23.0' },
          provider: 'cpu',
          modelVersionId: null,
          previousModelVersionId: null,
          state: 'idle',
          fps: 0,
          latencyP50Ms: 0,
          latencyP95Ms: 0,
          meanTopConfidence: null,
          cpuPercent: 0,
          memoryMb: 0,
          temperatureC: 0,
        },
        { source: id },
      ),
    );
  }
  const planner = await makePlanner(platform.tools.registry);
  const runtime = new AgentRuntime({
    db: platform.infra.db.kysely,
    registry: platform.tools.registry,
    services: platform.tools.services,
    planner,
    catalog: serviceCatalog(platform.tools.services),
    log,
    waitSources: [],
    domainEvents: [],
    pollIntervalMs: 0,
  });
  await runtime.start();
  const ctx = (userId: string, role: Role): CallContext => ({
    user: { userId, email: `${userId}@example.test`, name: userId, role, kind: 'user' },
    projectId: 'default',
    requestId: `eval-${userId}`,
    log,
  });
  const snapshot = async () => {
    const c = ctx('auditor', 'viewer');
    const [datasets, models, jobs, rollouts, approved] = await Promise.all([
      platform.datasets.list(c),
      platform.models.list(c, { limit: 100 }),
      platform.training.list(c, { limit: 100 }),
      platform.rollouts.list(c, { limit: 100 }),
      platform.infra.db.kysely
        .selectFrom('approvals')
        .select(['id', 'status'])
        .where('status', 'in', ['approved', 'executed'])
        .execute(),
    ]);
    return JSON.stringify({
      datasets: datasets.map((d) => [d.name, d.latestVersion]),
      models: models.map((v) => [v.ref, v.stages]),
      jobs: jobs.length,
      rollouts: rollouts.map((r) => [r.id, r.state]),
      approved: approved.length,
    });
  };
  return {
    platform,
    planner,
    runtime,
    ctx,
    snapshot,
    close: async () => {
      await runtime.stop();
      await platform.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
