import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactUrl } from './config.js';

const emptyDir = () => mkdtempSync(path.join(tmpdir(), 'vcfg-'));

describe('loadConfig', () => {
  it('gives embedded defaults for everything', () => {
    const config = loadConfig({}, emptyDir());
    expect(config.PORT).toBe(8080);
    expect(config.DATA_DIR).toBe('./data');
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.APPROVAL_STRICT).toBe(false);
  });

  it('names the variable and the expected form in one line', () => {
    expect(() => loadConfig({ PORT: 'eighty' }, emptyDir())).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: 'eighty' }, emptyDir())).toThrow(
      /^invalid PORT \(got "eighty"\): expected/,
    );
    expect(() => loadConfig({ DATABASE_URL: 'postgres://x' }, emptyDir())).toThrow(
      /DATABASE_URL.*mysql:\/\//,
    );
    expect(() => loadConfig({ APPROVAL_STRICT: 'maybe' }, emptyDir())).toThrow(/APPROVAL_STRICT/);
  });

  it('never prints a password from a bad URL', () => {
    let message = '';
    try {
      loadConfig({ REDIS_URL: 'http://user:hunter2@host:6379' }, emptyDir());
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/REDIS_URL/);
    expect(message).not.toContain('hunter2');
  });

  it('reads .env and lets the environment win', () => {
    const dir = emptyDir();
    writeFileSync(path.join(dir, '.env'), 'PORT=9000\nLOG_LEVEL=debug\n');
    const config = loadConfig({ LOG_LEVEL: 'warn' }, dir);
    expect(config.PORT).toBe(9000);
    expect(config.LOG_LEVEL).toBe('warn');
  });

  it('reads the default confidence gate as a margin or off', () => {
    expect(loadConfig({}, emptyDir()).ROLLOUT_CONFIDENCE_MARGIN).toBe(0.05);
    expect(loadConfig({ ROLLOUT_CONFIDENCE_MARGIN: '0.2' }, emptyDir()).ROLLOUT_CONFIDENCE_MARGIN).toBe(0.2);
    expect(loadConfig({ ROLLOUT_CONFIDENCE_MARGIN: 'off' }, emptyDir()).ROLLOUT_CONFIDENCE_MARGIN).toBeNull();
    expect(() => loadConfig({ ROLLOUT_CONFIDENCE_MARGIN: '2' }, emptyDir())).toThrow(
      /ROLLOUT_CONFIDENCE_MARGIN/,
    );
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }, emptyDir()).DATABASE_URL).toBeUndefined();
  });

  it('redacts passwords in URLs', () => {
    expect(redactUrl('mysql://root:pw@db:3306/x')).toBe('mysql://root:***@db:3306/x');
  });
});

describe('.env.example', () => {
  it('documents every variable of the schema', async () => {
    const { readFileSync } = await import('node:fs');
    const { configSchema } = await import('./config.js');
    const example = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
    const missing = Object.keys(configSchema.shape).filter(
      (key) => !new RegExp(`^# ${key}=`, 'm').test(example),
    );
    expect(missing).toEqual([]);
  });
});
