import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { chooseLogFormat, createLogger } from './log.js';

describe('chooseLogFormat', () => {
  it('writes readable lines on a terminal, JSON when piped or in production, and what was asked when forced', () => {
    const pick = (format: 'auto' | 'pretty' | 'json', isTTY: boolean, production: boolean) =>
      chooseLogFormat({ format, isTTY, production });
    expect(pick('auto', true, false)).toBe('pretty');
    expect(pick('auto', false, false)).toBe('json');
    expect(pick('auto', true, true)).toBe('json');
    expect(pick('json', true, false)).toBe('json');
    expect(pick('pretty', false, true)).toBe('pretty');
  });
});

describe('createLogger', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vlog-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes pretty lines through pino-pretty, with secrets still redacted', async () => {
    const file = path.join(dir, 'pretty.log');
    const log = createLogger('info', undefined, {
      format: 'auto',
      isTTY: true,
      production: false,
      prettyTo: file,
    });
    log.info({ password: 'hunter2-secret', user: { token: 'tok-abc-123' } }, 'signed in');
    log.flush();
    await vi.waitFor(() => expect(readFileSync(file, 'utf8')).toContain('signed in'), { timeout: 5000 });
    const text = readFileSync(file, 'utf8');
    expect(text.trimStart().startsWith('{')).toBe(false);
    expect(text).toMatch(/INFO.*signed in/);
    expect(text).toContain('[redacted]');
    expect(text).not.toContain('hunter2-secret');
    expect(text).not.toContain('tok-abc-123');
  });

  it('writes JSON lines when not on a terminal, with secrets redacted', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const piped = createLogger('info', undefined, { format: 'auto', isTTY: false, production: false });
    expect(typeof piped.info).toBe('function');
    createLogger('info', sink).info({ secret: 's3cr3t-value' }, 'configured');
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ msg: 'configured', secret: '[redacted]', app: 'visioninapp' });
  });
});
