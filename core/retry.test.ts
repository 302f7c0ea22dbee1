import { describe, expect, it } from 'vitest';
import { retry, sleep } from './retry.js';

describe('retry', () => {
  it('retries until the call succeeds and says which attempt it was', async () => {
    const seen: number[] = [];
    const out = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw new Error('not yet');
        return 'ok';
      },
      { retries: 5, minTimeout: 1, maxTimeout: 2 },
    );
    expect(out).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('stops at once on an error shouldRetry refuses, and rethrows it', async () => {
    let calls = 0;
    const err = await retry(
      async () => {
        calls++;
        throw new Error('permanent');
      },
      { retries: 5, minTimeout: 1, shouldRetry: () => false },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('permanent');
    expect(calls).toBe(1);
  });

  it('gives up after maxRetryTime with the last error', async () => {
    const t0 = Date.now();
    let calls = 0;
    const err = await retry(
      async () => {
        calls++;
        throw new Error(`down ${calls}`);
      },
      { retries: Infinity, minTimeout: 20, maxTimeout: 20, randomize: false, maxRetryTime: 150 },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`down ${calls}`);
    expect(calls).toBeGreaterThan(2);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('stops waiting when the signal aborts', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const t0 = Date.now();
    await expect(
      retry(
        async () => {
          throw new Error('down');
        },
        { retries: Infinity, minTimeout: 10_000, signal: ac.signal },
      ),
    ).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('sleep', () => {
  it('resolves early, without error, when the signal aborts', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 20);
    await sleep(10_000, ac.signal);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
