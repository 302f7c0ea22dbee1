import { describe, expect, it } from 'vitest';
import type { CallContext } from '../core/context.js';
import { silentLogger } from '../core/log.js';
import { maskSlots } from './nlu/text.js';
import { RulesPlanner } from './rules-planner.js';
import { StaticCatalog } from './static-catalog.js';

const ctx: CallContext = {
  user: { userId: 'u', email: 'u@x.test', name: 'u', role: 'operator', kind: 'user' },
  projectId: 'p',
  requestId: 'r',
  log: silentLogger(),
};

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
    [
      'train on the status-board dataset for 5 epochs',
      [['start_training', { dataset: 'status-board', epochs: 5 }]],
    ],
    ['show model rollback-detector@2', [['describe_model', { modelVersion: 'mv_rb_2' }]]],
    ['which devices are tagged deploy-cams', [['list_devices', { tag: 'deploy-cams' }]]],
    ['show train-yard-cam', [['describe_device', { device: 'dev_cam_2' }]]],
    [
      'evaluate rollback-detector@1 on dataset eval-set',
      [['evaluate_model', { modelVersion: 'mv_rb_1', split: 'test', dataset: 'eval-set' }]],
    ],
    ['explain job_logs2', [['explain_run', { jobId: 'job_logs2' }]]],
  ])('"%s"', async (message, expected) => {
    const p = await plan(message);
    expect(p.steps.map((s) => [s.tool, s.args])).toEqual(expected);
  });

  it('still reads the intents around the names', async () => {
    expect(
      (await plan('deploy rollback-detector@2 to deploy-cams')).steps.map((s) => [s.tool, s.args]),
    ).toEqual([['start_rollout', { modelVersion: 'mv_rb_2', target: { tag: 'deploy-cams' } }]]);
    expect(
      (await plan('roll back deploy-cams')).clarify ?? (await plan('roll back deploy-cams')).reply,
    ).toMatch(/no rollout on devices tagged deploy-cams/);
  });

  it('replaces names and model references by slots but leaves plain words', () => {
    const known = {
      datasets: ['ship-hulls'],
      versions: [],
      devices: [{ id: 'd1', name: 'jetson', tags: ['jetson'] }],
      tags: ['jetson'],
      jobs: [],
      rollouts: [],
    };
    const masked = maskSlots('ship ship-hulls to the jetson, then deploy foo@3 and dataset new-ship', known);
    expect(masked).toMatch(/^ship \{dataset\} /);
    expect(masked).not.toMatch(/ship-hulls|foo@3|new-ship/);
    expect(masked).toMatch(/\{model\}/);
    expect(masked).toMatch(/deploy/);
  });
});

describe('RulesPlanner imports', () => {
  it('reads a storage:<prefix> source and asks for a source inside the import folders otherwise', async () => {
    const p = await plan('import storage:uploads/set1 as helmets-v3');
    expect(p.steps.map((s) => [s.tool, s.args])).toEqual([
      ['import_dataset', { source: 'storage:uploads/set1', name: 'helmets-v3' }],
    ]);
    const asked = await plan('import a dataset as helmets-v4');
    expect(asked.steps).toEqual([]);
    expect(asked.clarify).toMatch(/under the server's import folders \(IMPORT_ROOTS\), or storage:<prefix>/);
  });
});

describe('RulesPlanner safety layer and slots', () => {
  const fleet = new StaticCatalog({
    datasets: [{ name: 'helmets-v2' }, { name: 'helmets-demo' }],
    modelVersions: [
      { id: 'mv_h_2', model: 'helmets', version: 2, stage: 'production', createdAt: 2 },
      { id: 'mv_h_3', model: 'helmets', version: 3, stage: 'candidate', createdAt: 3 },
    ],
    devices: [
      { id: 'd1', name: 'jetson-a', tags: ['line-3'] },
      { id: 'd2', name: 'jetson-b', tags: ['line-2'] },
    ],
    jobs: [{ id: 'job_1', dataset: 'helmets-v2@1', status: 'running', createdAt: 1 }],
    rollouts: [{ id: 'rol_1', target: 'line-3', status: 'waves', modelVersionId: 'mv_h_3', createdAt: 1 }],
  });
  const ask = (message: string) => planner.plan({ message, ctx, catalog: fleet, history: [] } as never);
  const tools = async (message: string) => (await ask(message)).steps.map((s) => s.tool);

  it('plans only reads for a question, never the change it mentions', async () => {
    expect(await tools('which model is running on line 3?')).toEqual(['list_devices']);
    expect(await tools('should I deploy helmets@3 to line 2?')).toEqual(['list_devices']);
    expect(await tools('3번 라인에 무슨 모델 깔려 있어?')).toEqual(['list_devices']);
    // A polite request is a request.
    expect(await tools('can you deploy helmets@3 to line 2?')).toEqual(['start_rollout']);
  });

  it('drops negated steps and says so', async () => {
    const p = await ask('train on helmets-v2 but do not deploy it');
    expect(p.steps.map((s) => s.tool)).toEqual(['start_training']);
    expect(p.reply).toMatch(/Not planned, as you said: "do not deploy it"/);
    expect((await ask("don't deploy")).steps).toEqual([]);
  });

  it('refuses actions it has no tool for, saying what it can do', async () => {
    const p = await ask('delete dataset helmets-demo');
    expect(p.steps).toEqual([]);
    expect(p.reply).toMatch(
      /^I can't delete anything: there is no tool for that, on purpose\. Here is what I can do: I can train/,
    );
  });

  it('corrects typos in verbs and names but never turns a version into another', async () => {
    expect((await ask('deplyo helmets@3 to lnie 2')).steps.map((s) => [s.tool, s.args])).toEqual([
      ['start_rollout', { modelVersion: 'mv_h_3', target: { tag: 'line-2' } }],
    ]);
    expect((await ask('show dataset helmet-v2')).steps[0]?.args).toEqual({ dataset: 'helmets-v2' });
    expect((await ask('train on dataset helmets-v9')).reply).toMatch(/dataset "helmets-v9" not found/);
  });

  it('reads arguments named in words', async () => {
    expect(
      (await ask('train a yolo11s model on helmets-v2 at image size 640 with batch size 32 for 5 epochs'))
        .steps[0]?.args,
    ).toEqual({
      dataset: 'helmets-v2',
      epochs: 5,
      backend: 'ultralytics',
      model: 'yolo11s.pt',
      imgsz: 640,
      batch: 32,
    });
    expect(
      (await ask('deploy the production model to line 2 with a canary of 1 device')).steps[0]?.args,
    ).toEqual({ modelVersion: 'mv_h_2', target: { tag: 'line-2' }, canary: 1 });
    expect((await ask('list the models in production')).steps[0]?.args).toEqual({ stage: 'production' });
  });

  it('asks with choices built from the catalog when the request leaves something open', async () => {
    const which = await ask('deploy the model');
    expect(which.clarify).toMatch(/Which model version should I deploy/);
    expect(which.choices?.map((c) => c.label)).toEqual(['helmets@3 (candidate)', 'helmets@2 (production)']);
    const where = await ask(which.choices![0]!.message);
    expect(where.clarify).toMatch(/Where should I deploy it/);
    expect(where.choices?.map((c) => c.label)).toEqual(['line-2 (1 device)', 'line-3 (1 device)']);
    const done = await ask(where.choices![1]!.message);
    expect(done.steps.map((s) => [s.tool, s.args])).toEqual([
      ['start_rollout', { modelVersion: 'mv_h_3', target: { tag: 'line-3' } }],
    ]);
  });
});
