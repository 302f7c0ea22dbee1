import { describe, expect, it } from 'vitest';
import type { CallContext } from '../core/context.js';
import { silentLogger } from '../core/log.js';
import { maskNames, RulesPlanner } from './rules-planner.js';
import { StaticCatalog } from './static-catalog.js';

const ctx: CallContext = { user: { userId: 'u', email: 'u@x.test', name: 'u', role: 'operator', kind: 'user' }, projectId: 'p', requestId: 'r', log: silentLogger() };

// Every name here holds an intent word: ship, deploy, rollback, status, logs, train, eval.
const catalog = new StaticCatalog({
  datasets: [{ name: 'ship-hulls' }, { name: 'status-board' }, { name: 'eval-set' }],
  modelVersions: [
    { id: 'mv_rb_1', model: 'rollback-detector', version: 1, createdAt: 1 },
    { id: 'mv_rb_2', model: 'rollback-detector', version: 2, createdAt: 2 },
  ],
  devices: [
    { id: 'dev_cam_1', name: 'deploy-cam-1', tags: ['deploy-cams', 'jetson'] },
    { id: 'dev_cam_2', name: 'train-yard-cam', tags: ['deploy-cams', 'jetson'] },
  ],
  jobs: [{ id: 'job_logs2', dataset: 'ship-hulls@1', status: 'succeeded', createdAt: 5 }],
  rollouts: [],
});
const planner = new RulesPlanner();
const plan = (message: string) => planner.plan({ message, ctx, catalog, history: [] } as never);

describe('RulesPlanner names that contain intent words', () => {
  it.each([
    ['train a detector on dataset ship-hulls', [['start_training', { dataset: 'ship-hulls' }]]],
    ['train on the status-board dataset for 5 epochs', [['start_training', { dataset: 'status-board', epochs: 5 }]]],
    ['show model rollback-detector@2', [['describe_model', { modelVersion: 'mv_rb_2' }]]],
    ['which devices are tagged deploy-cams', [['list_devices', { tag: 'deploy-cams' }]]],
    ['show train-yard-cam', [['describe_device', { device: 'dev_cam_2' }]]],
    ['evaluate rollback-detector@1 on dataset eval-set', [['evaluate_model', { modelVersion: 'mv_rb_1', split: 'test', dataset: 'eval-set' }]]],
    ['explain job_logs2', [['explain_run', { jobId: 'job_logs2' }]]],
  ])('"%s"', async (message, expected) => {
    const p = await plan(message);
    expect(p.steps.map((s) => [s.tool, s.args])).toEqual(expected);
  });

  it('still reads the intents around the names', async () => {
    expect((await plan('deploy rollback-detector@2 to deploy-cams')).steps.map((s) => [s.tool, s.args])).toEqual([
      ['start_rollout', { modelVersion: 'mv_rb_2', target: { tag: 'deploy-cams' } }],
    ]);
    expect((await plan('roll back deploy-cams')).clarify ?? (await plan('roll back deploy-cams')).reply).toMatch(/no rollout on devices tagged deploy-cams/);
  });

  it('masks identifier-like names and model references but leaves plain words', () => {
    const known = { datasets: ['ship-hulls'], versions: [], devices: [{ id: 'd1', name: 'jetson', tags: ['jetson'] }], tags: ['jetson'], jobs: [], rollouts: [] };
    const masked = maskNames('ship ship-hulls to the jetson, then deploy foo@3 and dataset new-ship', known);
    expect(masked).toMatch(/^ship /);
    expect(masked).not.toMatch(/ship-hulls|foo@3|new-ship/);
    expect(masked).toMatch(/jetson/);
    expect(masked).toMatch(/deploy/);
  });
});

describe('RulesPlanner imports', () => {
  it('reads a storage:<prefix> source and asks for a source inside the import folders otherwise', async () => {
    const p = await plan('import storage:uploads/set1 as helmets-v3');
    expect(p.steps.map((s) => [s.tool, s.args])).toEqual([['import_dataset', { source: 'storage:uploads/set1', name: 'helmets-v3' }]]);
    const asked = await plan('import a dataset as helmets-v4');
    expect(asked.steps).toEqual([]);
    expect(asked.clarify).toMatch(/under the server's import folders \(IMPORT_ROOTS\), or storage:<prefix>/);
  });
});
