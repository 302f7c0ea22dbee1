import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { connect, type Client } from 'rabbitmq-stream-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../../../test/services.fixtures.js';
import { createLogger } from '../../../core/log.js';
import { metrics } from './broker.contract.js';
import { STREAMS } from './port.js';
import { RabbitBroker } from './rabbitmq.js';

// Needs RabbitMQ with the stream plugin (TEST_RABBITMQ_STREAM_URL) and rabbitmqctl on this machine to read stream arguments.
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');
const url = SERVICE_URLS.rabbitmq;

function captured(): {
  log: ReturnType<typeof createLogger>;
  lines: () => Array<{ level: number; msg: string; stream?: string }>;
} {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk.toString());
      done();
    },
  });
  return {
    log: createLogger('info', sink),
    lines: () =>
      out
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string; stream?: string }),
  };
}

async function streamArguments(name: string): Promise<string> {
  const { stdout } = await promisify(execFile)('rabbitmqctl', ['list_queues', '-q', 'name', 'arguments']);
  return stdout.split('\n').find((l) => l.startsWith(`${name}\t`)) ?? '';
}

describe.skipIf(skip)('RabbitBroker retention arguments', () => {
  let raw: Client;
  const prefix = `test-${uniqueSuffix()}-`;

  beforeAll(async () => {
    const u = new URL(url);
    raw = await connect({
      hostname: u.hostname,
      port: Number(u.port || 5552),
      username: u.username || 'guest',
      password: u.password || 'guest',
      vhost: '/',
    });
  });
  afterAll(async () => {
    for (const s of Object.values(STREAMS))
      await raw?.deleteStream({ stream: `${prefix}${s}` }).catch(() => undefined);
    await raw?.close();
  });

  it('declares streams with the configured bounds; a stream declared with others is one warning, and it still works', async () => {
    const a = captured();
    const first = new RabbitBroker({
      url,
      log: a.log,
      streamPrefix: prefix,
      bounds: { maxAge: '2D', maxBytes: 3_000_000, maxSegmentSizeBytes: 1_000_000 },
    });
    await first.publish(STREAMS.telemetry, metrics(1));
    await first.close();
    const args = await streamArguments(`${prefix}${STREAMS.telemetry}`);
    expect(args).toContain('{"x-max-age","2D"}');
    expect(args).toContain('{"x-max-length-bytes",3000000}');
    expect(args).toContain('{"x-stream-max-segment-size-bytes",1000000}');
    expect(a.lines().filter((l) => l.level >= 40 && /retention arguments/.test(l.msg))).toEqual([]);

    const b = captured();
    const second = new RabbitBroker({
      url,
      log: b.log,
      streamPrefix: prefix,
      bounds: { maxAge: '7D', maxBytes: 10_000_000_000, maxSegmentSizeBytes: 500_000_000 },
    });
    const got: number[] = [];
    const sub = await second.subscribe(
      STREAMS.telemetry,
      { from: 'first' },
      (env) => void got.push((env.payload as { epoch: number }).epoch),
    );
    await second.publish(STREAMS.telemetry, metrics(2));
    const deadline = Date.now() + 10_000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([1, 2]);
    await sub.close();
    await second.close();

    const warnings = b.lines().filter((l) => l.level >= 40 && /retention arguments/.test(l.msg));
    // one per stream, not per reconnect
    expect(warnings.map((w) => w.stream).sort()).toEqual(
      Object.values(STREAMS)
        .map((s) => `${prefix}${s}`)
        .sort(),
    );
    const telemetry = warnings.find((w) => w.stream === `${prefix}${STREAMS.telemetry}`)!.msg;
    expect(telemetry).toContain(`stream "${prefix}${STREAMS.telemetry}"`);
    expect(telemetry).toContain(
      'max-age 7D, max-length-bytes 10000000000, stream-max-segment-size-bytes 500000000',
    );
    expect(telemetry).toContain('rabbitmqctl list_queues name arguments');
    expect(telemetry).toContain('rabbitmqctl set_policy');
    expect(telemetry).toContain('RABBITMQ_STREAM_MAX_AGE');
    // the existing arguments stay
    expect(await streamArguments(`${prefix}${STREAMS.telemetry}`)).toContain('{"x-max-age","2D"}');
  }, 60_000);
});
