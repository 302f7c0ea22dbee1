import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.js';
import { systemPrincipal } from '../../core/context.js';
import {
  Delivery,
  MemoryBroker,
  STREAMS,
  decodeMessage,
  makeEnvelope,
  parseMessage,
  type Envelope,
  type MessageType,
} from '../../services/infra/broker/index.js';
import { silentLogger, type Logger } from '../../core/log.js';
import { createPlatform } from '../../app/platform.js';

const RUNS = { numRuns: 300 };
const SHA = 'a'.repeat(64);

/** One valid payload per message type; the properties mutate them into near-misses. */
const VALID: { [T in MessageType]?: unknown } = {
  'train.cancel': { jobId: 'job_1', attempt: 1, reason: 'stop' },
  notify: { level: 'info', text: 'hello' },
  'runner.heartbeat': { runnerId: 'r1', backends: ['builtin'], device: { kind: 'cpu', name: 'cpu' } },
  'train.status': { jobId: 'job_1', attempt: 1, runnerId: 'r1', status: 'running' },
  'train.log': { jobId: 'job_1', attempt: 1, seq: 0, lines: ['epoch 1'] },
  'train.metrics': {
    jobId: 'job_1',
    attempt: 1,
    epoch: 1,
    epochs: 3,
    kind: 'epoch',
    metrics: { mAP50: 0.5 },
  },
  'device.heartbeat': {
    deviceId: 'dev-1',
    name: 'jetson 1',
    tags: ['line-3'],
    hardware: 'orin',
    runtime: { onnxruntime: '1.23' },
    provider: 'cpu',
    modelVersionId: null,
    state: 'idle',
    fps: 0,
    latencyP50Ms: 0,
    latencyP95Ms: 0,
    meanTopConfidence: null,
    cpuPercent: 1,
    memoryMb: 100,
    temperatureC: null,
  },
  'device.health': {
    deviceId: 'dev-1',
    deploymentId: 'd1',
    rolloutId: 'ro1',
    modelVersionId: 'mv1',
    state: 'healthy',
  },
  'feedback.sample': {
    deviceId: 'dev-1',
    modelVersionId: null,
    imageKey: 'k',
    sha256: SHA,
    width: 10,
    height: 10,
    reason: 'manual',
    predictions: [{ box: [0, 0, 1, 1], classId: 0, className: 'helmet', score: 0.4 }],
    capturedAt: 1,
  },
  'artifact.ready': {
    jobId: 'job_1',
    attempt: 1,
    runnerId: 'r1',
    artifacts: [{ name: 'model.onnx', key: 'k', sha256: SHA, size: 1 }],
    model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet'] },
    metrics: { mAP50: 0.5 },
  },
};
const TYPES = Object.keys(VALID) as MessageType[];

const envelopeOf = (type: string, payload: unknown): Record<string, unknown> => ({
  id: 'm-1',
  type,
  ts: new Date(0).toISOString(),
  source: 'test',
  payload,
});

/** Replaces the value at a random path of `value` with `replacement` (or deletes the key). */
function mutate(value: unknown, pathPicks: number[], replacement: unknown, remove: boolean): unknown {
  if (pathPicks.length === 0 || value === null || typeof value !== 'object') return replacement;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value)
    ? [...value]
    : { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return replacement;
  const key = keys[pathPicks[0]! % keys.length]!;
  if (remove && pathPicks.length === 1) {
    delete (copy as Record<string, unknown>)[key];
    return copy;
  }
  (copy as Record<string, unknown>)[key] = mutate(
    (copy as Record<string, unknown>)[key],
    pathPicks.slice(1),
    replacement,
    remove,
  );
  return copy;
}

const nearMiss = fc
  .tuple(
    fc.constantFrom(...TYPES),
    fc.array(fc.nat(), { minLength: 0, maxLength: 4 }),
    fc.jsonValue({ maxDepth: 2 }),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([type, picks, replacement, remove, inEnvelope]) =>
    inEnvelope
      ? mutate(envelopeOf(type, VALID[type]), picks, replacement, remove)
      : envelopeOf(type, mutate(VALID[type], picks, replacement, remove)),
  );

const hostileJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  nearMiss,
  fc.constantFrom<unknown>(
    {
      __proto__: { polluted: true },
      id: 'x',
      type: 'notify',
      ts: new Date().toISOString(),
      source: 's',
      payload: { level: 'info', text: 't' },
    },
    JSON.parse('{"id":"x","type":"__proto__","ts":"2024-01-01T00:00:00.000Z","source":"s","payload":{}}'),
    JSON.parse('{"id":"x","type":"constructor","ts":"2024-01-01T00:00:00.000Z","source":"s","payload":{}}'),
    JSON.parse('{"id":"x","type":"toString","ts":"2024-01-01T00:00:00.000Z","source":"s","payload":{}}'),
  ),
);

const hostileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 200 }),
  hostileJson.map((v) => JSON.stringify(v) ?? 'undefined'),
  fc.constantFrom(
    '',
    'null',
    '1e999',
    '"\\ud800"',
    '[[[[[[[[[[',
    `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
    Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1]),
  ),
);

function recordingLogger(): { log: Logger; warnings: unknown[] } {
  const warnings: unknown[] = [];
  const log = silentLogger();
  log.warn = ((obj: unknown) => void warnings.push(obj)) as Logger['warn'];
  return { log, warnings };
}

describe('broker envelopes under random input', () => {
  it('parseMessage never throws; an accepted message re-validates and keeps its type', () => {
    fc.assert(
      fc.property(hostileJson, (input) => {
        const r = parseMessage(input);
        if (r.ok) {
          expect(parseMessage(JSON.parse(JSON.stringify(r.message))).ok).toBe(true);
          expect(Object.keys(VALID)).toContain(r.message.type);
        } else {
          expect(r.error).toMatch(/^(invalid envelope|unknown message type|invalid [a-z.]+ payload)/);
        }
      }),
      RUNS,
    );
  });

  it('every unmutated sample payload is valid, so the near-miss inputs above are meaningful', () => {
    for (const type of TYPES)
      expect(parseMessage(envelopeOf(type, VALID[type])), type).toMatchObject({ ok: true });
  });

  it('decodeMessage never throws on arbitrary bytes, invalid UTF-8 or deep nesting', () => {
    fc.assert(
      fc.property(hostileBytes, (bytes) => {
        const r = decodeMessage(bytes);
        if (!r.ok) expect(typeof r.error).toBe('string');
      }),
      RUNS,
    );
  });

  it('Delivery never throws: invalid bytes are logged with their offset and skipped, the handler sees only valid messages', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(hostileBytes, { maxLength: 10 }),
        fc.boolean(),
        async (records, handlerThrows) => {
          const seen: Envelope[] = [];
          const { log, warnings } = recordingLogger();
          const delivery = new Delivery({
            stream: STREAMS.telemetry,
            log,
            handler: (m) => {
              seen.push(m);
              if (handlerThrows) throw new TypeError('handler bug');
            },
          });
          let invalid = 0;
          for (const [offset, bytes] of records.entries()) {
            const outcome = await delivery.deliver(bytes, offset);
            const decoded = decodeMessage(bytes);
            if (!decoded.ok) {
              invalid++;
              expect(outcome).toBe('invalid');
            } else expect(['handled', 'failed', 'duplicate']).toContain(outcome);
          }
          expect(warnings).toHaveLength(invalid);
          for (const w of warnings)
            expect(w).toMatchObject({ offset: expect.any(Number), error: expect.any(String) });
          for (const m of seen) expect(parseMessage(m).ok).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the in-process broker refuses invalid envelopes at publish with a clear error', async () => {
    const broker = new MemoryBroker();
    try {
      await fc.assert(
        fc.asyncProperty(hostileJson, async (input) => {
          if (parseMessage(input).ok) return;
          await expect(broker.publish(STREAMS.telemetry, input as Envelope)).rejects.toMatchObject({
            code: 'invalid_input',
            message: expect.stringMatching(/cannot publish/),
          });
        }),
        { numRuns: 100 },
      );
    } finally {
      await broker.close();
    }
  });
});

describe('platform consumers under hostile telemetry', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('keep consuming after garbage, near-miss envelopes and valid messages for unknown jobs', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'vrel-broker-'));
    dirs.push(dataDir);
    const config = loadConfig(
      {
        DATA_DIR: dataDir,
        LOG_LEVEL: 'silent',
        EMBEDDED_GPU_RUNNER: 'false',
        SIMULATED_DEVICES: '0',
        DEMO_DATASET: 'false',
      },
      dataDir,
    );
    const platform = await createPlatform(config, silentLogger());
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      await platform.start();
      const broker = platform.infra.broker as MemoryBroker;
      const garbage = fc.sample(hostileBytes, { numRuns: 300, seed: 42 });
      for (const bytes of garbage) broker.appendRaw(STREAMS.telemetry, bytes);
      for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
        broker.appendRaw(
          STREAMS.telemetry,
          JSON.stringify({
            id: `proto-${type}`,
            type,
            ts: new Date().toISOString(),
            source: 'fuzz',
            payload: {},
          }),
        );
      }
      // valid envelopes whose content refers to nothing the platform knows
      for (const type of TYPES)
        await broker.publish(STREAMS.telemetry, makeEnvelope(type, VALID[type] as never, { source: 'fuzz' }));
      const after = {
        ...(VALID['device.heartbeat'] as Record<string, unknown>),
        deviceId: 'dev-after-garbage',
        name: 'after garbage',
      };
      await broker.publish(
        STREAMS.telemetry,
        makeEnvelope('device.heartbeat', after as never, { source: 'fuzz' }),
      );
      const ctx = { user: systemPrincipal(), projectId: 'default', requestId: 'r', log: silentLogger() };
      let found = false;
      for (let i = 0; i < 100 && !found; i++) {
        found = (await platform.fleet.list(ctx)).some((d) => d.id === 'dev-after-garbage');
        if (!found) await new Promise((r) => setTimeout(r, 50));
      }
      expect(found).toBe(true);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await platform.close();
    }
  }, 60_000);
});
