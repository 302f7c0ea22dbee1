import { describe, expect, it } from 'vitest';
import { page } from './paging.js';

describe('page', () => {
  const size = { default: 50, max: 500 };
  it('uses the default size and offset 0 when nothing is asked', () => {
    expect(page({}, size)).toEqual({ limit: 50, offset: 0 });
  });
  it('keeps the size between 1 and the maximum and the offset at 0 or more', () => {
    expect(page({ limit: 0, offset: -3 }, size)).toEqual({ limit: 1, offset: 0 });
    expect(page({ limit: 10_000, offset: 20 }, size)).toEqual({ limit: 500, offset: 20 });
    expect(page({ limit: 7 }, size)).toEqual({ limit: 7, offset: 0 });
  });
});
