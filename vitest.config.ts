import { defineConfig } from 'vitest/config';

// Files named *.disruptive.int.test.ts stop a server every other file shares (RabbitMQ's app), so
// they run in a second group, one file at a time, after every other file has finished.
const DISRUPTIVE = '**/*.disruptive.int.test.ts';
// The crash-recovery scenarios (a serve SIGKILLed mid-approval, mid-training, mid-rollout, on SQLite
// and MariaDB) take about 8 minutes of mostly waiting; they are their own project, run by
// `npm run test:crash` (and by .ci/run after `npm test`), so `npm test` stays under 12 minutes.
const CRASH = 'test/reliability/crash-*.int.test.ts';
const shared = {
  exclude: ['node_modules/**', 'data/**'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...shared,
          name: 'main',
          include: ['**/*.test.ts'],
          exclude: [...shared.exclude, DISRUPTIVE, CRASH],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'disruptive',
          include: [DISRUPTIVE],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          ...shared,
          name: 'crash',
          include: [CRASH],
          maxWorkers: 2,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
