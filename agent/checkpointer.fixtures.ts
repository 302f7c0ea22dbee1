import * as vitest from 'vitest';

/** The official checkpoint validation suite is written against vitest's globals; this repository runs without them. */
export function useVitestGlobals(): void {
  Object.assign(globalThis, {
    describe: vitest.describe,
    it: vitest.it,
    test: vitest.test,
    expect: vitest.expect,
    beforeAll: vitest.beforeAll,
    afterAll: vitest.afterAll,
    beforeEach: vitest.beforeEach,
    afterEach: vitest.afterEach,
  });
}
