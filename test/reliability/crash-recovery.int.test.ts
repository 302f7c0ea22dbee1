import { afterAll, describe, it } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../services.fixtures.js';
import { approvalCrashScenario } from './crash-approval-scenario.js';

// The same kills with the platform on MySQL/MariaDB (TEST_DATABASE_URL): checkpoints, approvals and audit there.
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)('crash recovery: visioninapp serve killed with SIGKILL (MySQL)', () => {
  const cleanups: Array<() => void> = [];
  let drop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    cleanups.reverse().forEach((c) => c());
    await drop?.();
  });

  it('keeps a pending approval and its conversation across a kill, and never runs an approved step twice', async () => {
    const db = await createTempMysqlDatabase();
    drop = db.drop;
    await approvalCrashScenario({ DATABASE_URL: db.url }, cleanups);
  }, 180_000);
});
