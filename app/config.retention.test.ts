import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const emptyDir = () => mkdtempSync(path.join(tmpdir(), 'vcfg-'));

describe('stream retention settings', () => {
  it('default to 7 days, 10 GB and 500 MB segments', () => {
    const c = loadConfig({}, emptyDir());
    expect(c.RABBITMQ_STREAM_MAX_AGE).toBe('7D');
    expect(c.RABBITMQ_STREAM_MAX_BYTES).toBe(10_000_000_000);
    expect(c.RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES).toBe(500_000_000);
  });

  it('read durations in RabbitMQ units and sizes with or without a unit', () => {
    const c = loadConfig(
      {
        RABBITMQ_STREAM_MAX_AGE: '12h',
        RABBITMQ_STREAM_MAX_BYTES: '2GiB',
        RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES: '1000000',
      },
      emptyDir(),
    );
    expect(c.RABBITMQ_STREAM_MAX_AGE).toBe('12h');
    expect(c.RABBITMQ_STREAM_MAX_BYTES).toBe(2 * 1024 ** 3);
    expect(c.RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES).toBe(1_000_000);
    expect(loadConfig({ RABBITMQ_STREAM_MAX_BYTES: '500MB' }, emptyDir()).RABBITMQ_STREAM_MAX_BYTES).toBe(
      500_000_000,
    );
  });

  it('refuse what RabbitMQ would not read, naming the variable and the form', () => {
    expect(() => loadConfig({ RABBITMQ_STREAM_MAX_AGE: '7 days' }, emptyDir())).toThrow(
      /^invalid RABBITMQ_STREAM_MAX_AGE \(got "7 days"\): expected a duration like 7D, 12h/,
    );
    expect(() => loadConfig({ RABBITMQ_STREAM_MAX_AGE: '604800' }, emptyDir())).toThrow(
      /RABBITMQ_STREAM_MAX_AGE/,
    );
    expect(() => loadConfig({ RABBITMQ_STREAM_MAX_AGE: '0D' }, emptyDir())).toThrow(
      /RABBITMQ_STREAM_MAX_AGE/,
    );
    expect(() => loadConfig({ RABBITMQ_STREAM_MAX_BYTES: '10 gigs' }, emptyDir())).toThrow(
      /^invalid RABBITMQ_STREAM_MAX_BYTES \(got "10 gigs"\): expected a size like 10GB/,
    );
    expect(() => loadConfig({ RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES: '0' }, emptyDir())).toThrow(
      /RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES/,
    );
  });
});
