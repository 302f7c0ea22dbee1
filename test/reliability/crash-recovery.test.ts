import { afterAll, describe, it } from 'vitest';
import { approvalCrashScenario } from './crash-approval-scenario.js';

describe('crash recovery: visioninapp serve killed with SIGKILL (SQLite)', () => {
  const cleanups: Array<() => void> = [];
  afterAll(() => cleanups.reverse().forEach((c) => c()));

  it(
    'keeps a pending approval and its conversation across a kill, and never runs an approved step twice',
    () => approvalCrashScenario({}, cleanups),
    180_000,
  );
});
