import { defineConfig } from 'vitest/config';

// Files named *.disruptive.int.test.ts stop a server every other file shares (RabbitMQ's app), so
// they run in a second group, one file at a time, after every other file has finished.
const DISRUPTIVE = '**/*.disruptive.int.test.ts';
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
          exclude: [...shared.exclude, DISRUPTIVE],
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
    ],
  },
});
