import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PlatformError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import type { Detector } from '../vision/index.js';
import { loadWithFallback } from './providers.js';

function capture(): {
  log: ReturnType<typeof createLogger>;
  lines: () => Array<{ level: number; msg: string }>;
} {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk.toString());
      done();
    },
  });
  const log = createLogger('debug', sink);
  return {
    log,
    lines: () =>
      out
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}

describe('loadWithFallback logging', () => {
  it('a provider whose library is not installed is a debug line, not a warning', async () => {
    const { log, lines } = capture();
    let calls = 0;
    const loader = (async () => {
      if (++calls < 3)
        throw new PlatformError(
          'invalid_input',
          'onnxruntime cannot load the model: OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library',
        );
      return { dispose: async () => undefined } as unknown as Detector;
    }) as never;
    const loaded = await loadWithFallback('m.onnx', ['tensorrt', 'cuda', 'cpu'], { loader, log });
    expect(loaded.provider).toBe('cpu');
    expect(loaded.failures).toHaveLength(2);
    const logged = lines();
    expect(logged.filter((l) => l.level >= 40)).toEqual([]);
    expect(logged.filter((l) => l.level === 20).length).toBeGreaterThanOrEqual(2);
  });

  it('a provider that is installed but fails is still a warning', async () => {
    const { log, lines } = capture();
    let calls = 0;
    const loader = (async () => {
      if (++calls < 2)
        throw new PlatformError(
          'invalid_input',
          'onnxruntime cannot load the model: TensorRT engine build failed',
        );
      return { dispose: async () => undefined } as unknown as Detector;
    }) as never;
    await loadWithFallback('m.onnx', ['tensorrt', 'cpu'], { loader, log });
    expect(
      lines()
        .filter((l) => l.level === 40)
        .map((l) => l.msg),
    ).toContain('execution provider failed to create a session; trying the next');
  });
});
