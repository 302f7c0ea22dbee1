import { describe, expect, it } from 'vitest';
import type { AgentStateValue, StepRecord } from './state.js';
import { readableNumber, stepFigures, stepFindings, templateReport } from './report.js';

const step = (over: Partial<StepRecord>): StepRecord => ({
  index: 0,
  tool: 'list_datasets',
  reason: 'list the datasets',
  risk: 'read',
  state: 'done',
  ...over,
});

function finished(steps: StepRecord[], status: AgentStateValue['status'] = 'done'): AgentStateValue {
  return {
    planned: { steps: steps.map((s) => ({ tool: s.tool, args: {}, reason: s.reason })) },
    steps,
    status,
  } as unknown as AgentStateValue;
}

describe('templateReport', () => {
  it('answers a read-only question with what was found, not "1 of 1 steps completed"', () => {
    const report = templateReport(
      finished([
        step({
          output: {
            datasets: [
              {
                name: 'helmets-demo',
                latestVersion: 2,
                images: 1200,
                boxes: 3456,
                classes: ['helmet', 'head'],
                tags: [],
              },
              { name: 'forklifts', latestVersion: 1, images: 1, boxes: 1, classes: ['forklift'], tags: [] },
            ],
          },
        }),
      ]),
    );
    expect(report).not.toMatch(/steps completed/);
    expect(report.split('\n')).toEqual([
      'Found 2 datasets:',
      '- helmets-demo: v2, 1,200 images, 3,456 boxes, classes helmet, head',
      '- forklifts: v1, 1 image, 1 box, classes forklift',
    ]);
  });

  it('names the model each device runs and its health', () => {
    const report = templateReport(
      finished([
        step({
          tool: 'list_devices',
          output: {
            devices: [
              {
                id: 'dev_1',
                name: 'jetson-l3-a',
                model: 'helmets@3',
                modelVersionId: 'mv_x',
                health: 'ok',
                issues: [],
                fps: 29.7,
                latencyP95Ms: 12.345,
                state: 'serving',
              },
              {
                id: 'dev_2',
                name: 'jetson-l3-b',
                modelVersionId: null,
                health: 'warn',
                issues: ['no model deployed'],
                fps: 0,
                latencyP95Ms: 0,
                state: 'idle',
              },
            ],
          },
        }),
      ]),
    );
    expect(report).toContain('- jetson-l3-a: serving, health ok, model helmets@3, 30 fps, p95 12.3 ms');
    expect(report).toContain('- jetson-l3-b: idle, health warn, no model, no model deployed');
    expect(report).not.toContain('mv_x');
  });

  it('says when nothing was found, and describes one thing', () => {
    expect(templateReport(finished([step({ tool: 'list_models', output: { versions: [] } })]))).toBe(
      'No versions found.',
    );
    const described = stepFindings(
      step({
        tool: 'describe_model',
        output: {
          id: 'mv_1',
          ref: 'helmets@2',
          stages: ['production'],
          metrics: { mAP50: 0.8123 },
          dataset: 'helmets-demo@1',
        },
      }),
    );
    expect(described).toEqual(['helmets@2: production, dataset helmets-demo@1, mAP50 0.812']);
  });

  it('keeps the step lines of a plan that changed something, with what each read step found', () => {
    const report = templateReport(
      finished([
        step({ output: { datasets: [{ name: 'helmets-demo', images: 3 }] } }),
        step({
          index: 1,
          tool: 'start_training',
          risk: 'write',
          reason: 'train',
          output: { jobId: 'job_1', status: 'queued' },
        }),
      ]),
    );
    expect(report.split('\n').slice(0, 4)).toEqual([
      'Done: 2 of 2 steps completed.',
      '1. list_datasets: done',
      '   Found 1 dataset:',
      '   - helmets-demo: 3 images',
    ]);
  });

  it('says how many devices a rollback put back, not "0 devices updated"', () => {
    const rollback = (output: Record<string, unknown>) =>
      stepFigures(step({ tool: 'rollback_rollout', risk: 'critical', output }));
    expect(
      rollback({
        state: 'rolled_back',
        devicesUpdated: 0,
        devicesRolledBack: 5,
        devicesTotal: 5,
        model: 'helmets@3',
      }),
    ).toEqual(['rolled back: 5 of 5 devices on their previous model', 'model version helmets@3']);
    // a rollout that completed still reports the devices it updated
    expect(
      rollback({ state: 'completed', devicesUpdated: 3, devicesRolledBack: 0, devicesTotal: 3 }),
    ).toEqual(['3 devices updated of 3']);
  });

  it('rounds numbers for people', () => {
    expect(readableNumber(10)).toBe('10');
    expect(readableNumber(12345)).toBe('12,345');
    expect(readableNumber(0.941758394241333)).toBe('0.942');
  });
});
