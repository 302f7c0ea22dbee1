import { describe, expect, it } from 'vitest';
import { connectionFailure, PlatformError } from './errors.js';

describe('connectionFailure', () => {
  it('turns driver connection errors into unavailable, with no driver detail', () => {
    for (const err of [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('Connection lost: The server closed the connection.'), {
        code: 'PROTOCOL_CONNECTION_LOST',
        fatal: true,
      }),
      new Error('Connection is closed.'),
    ]) {
      const pe = connectionFailure(err);
      expect(pe).toBeInstanceOf(PlatformError);
      expect(pe?.code).toBe('unavailable');
      expect(pe?.message).toMatch(/readyz/);
    }
  });

  it('leaves other errors alone', () => {
    expect(connectionFailure(new Error('boom'))).toBeUndefined();
    expect(connectionFailure(Object.assign(new Error('dup'), { code: 'ER_DUP_ENTRY' }))).toBeUndefined();
    expect(connectionFailure(null)).toBeUndefined();
    expect(connectionFailure('text')).toBeUndefined();
  });
});
