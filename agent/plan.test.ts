import { describe, expect, it } from 'vitest';
import { conditionOf, type PlanStep } from './plan.js';

const step = (when?: PlanStep['when']): PlanStep => ({
  tool: 'promote_model',
  args: { modelVersion: '$steps.0.output.ref', stage: 'production' },
  reason: 'promote it',
  ...(when === undefined ? {} : { when }),
});
const gate = { ref: '$steps.1.output.better', otherwise: '$steps.1.output.reason' };

describe('conditionOf (a plan step that runs only when an earlier result says so)', () => {
  it('holds for a step without a condition and for a referenced true', () => {
    expect(conditionOf(step(), [])).toEqual({ holds: true });
    expect(conditionOf(step(gate), [{ output: {} }, { output: { better: true } }])).toEqual({ holds: true });
  });

  it('does not hold for anything but true, and says why from the referenced reason', () => {
    const outcomes = [{ output: {} }, { output: { better: false, reason: 'helmets@3 is not better' } }];
    expect(conditionOf(step(gate), outcomes)).toEqual({ holds: false, why: 'helmets@3 is not better' });
    // a truthy value that is not `true` does not pass
    expect(conditionOf(step(gate), [{}, { output: { better: 'yes', reason: 'r' } }])).toMatchObject({
      holds: false,
    });
    expect(conditionOf(step({ ref: '$steps.1.output.better', otherwise: 'not better' }), outcomes)).toEqual({
      holds: false,
      why: 'not better',
    });
  });

  it('does not hold when the referenced step produced nothing', () => {
    expect(conditionOf(step(gate), [{ output: {} }])).toEqual({
      holds: false,
      why: 'step argument $steps.1.output.better has no value: step 2 did not produce it',
    });
  });
});
