import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { brokerContract, metrics } from './broker.contract.js';
import type { Envelope } from '../../../protocol/envelope.js';
import { createBroker } from './index.js';
import { MemoryBroker } from './memory.js';
import { silentLogger } from '../../../core/log.js';
import { STREAMS } from './port.js';

brokerContract(
  'memory',
  async () => {
    const broker = new MemoryBroker();
    return { broker, publishRaw: async (stream, data) => void broker.appendRaw(stream, data) };
  },
  {
    bounded: async (bounds, onGap) => {
      const broker = new MemoryBroker({ bounds, onRetentionGap: onGap });
      return { broker, publishRaw: async (stream, data) => void broker.appendRaw(stream, data) };
    },
  },
);

brokerContract(
  'memory with dataDir',
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vbroker-'));
    const broker = new MemoryBroker({ dataDir: dir });
    return {
      broker,
      publishRaw: async (stream, data) => void broker.appendRaw(stream, data),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  {
    bounded: async (bounds, onGap) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'vbroker-'));
      const broker = new MemoryBroker({ dataDir: dir, bounds, onRetentionGap: onGap });
      return {
        broker,
        publishRaw: async (stream, data) => void broker.appendRaw(stream, data),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
);

describe(MemoryBroker.name, () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vbroker-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const epochOf = (env: Envelope) => (env.payload as { epoch: number }).epoch;

  it('keeps streams and named offsets across a restart of the broker object', async () => {
    const dataDir = tempDir();
    const first = new MemoryBroker({ dataDir });
    const got: number[] = [];
    await first.subscribe(
      STREAMS.telemetry,
      { name: 'writer', from: 'first' },
      (env) => void got.push(epochOf(env)),
    );
    for (let i = 0; i < 5; i++) await first.publish(STREAMS.telemetry, metrics(i));
    await new Promise((r) => setTimeout(r, 20));
    await first.close();
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(JSON.parse(readFileSync(path.join(dataDir, 'broker-offsets.json'), 'utf8'))).toEqual({
      'vision.telemetry/writer': 4,
    });

    const second = new MemoryBroker({ dataDir });
    expect(second.endOffset(STREAMS.telemetry)).toBe(5);
    for (let i = 5; i < 8; i++) await second.publish(STREAMS.telemetry, metrics(i));
    const resumed: number[] = [];
    await second.subscribe(
      STREAMS.telemetry,
      { name: 'writer', from: 'first' },
      (env) => void resumed.push(epochOf(env)),
    );
    const replay: number[] = [];
    await second.subscribe(STREAMS.telemetry, { from: 'first' }, (env) => void replay.push(epochOf(env)));
    await new Promise((r) => setTimeout(r, 20));
    expect(resumed).toEqual([5, 6, 7]);
    expect(replay).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await second.close();
  });

  it('bounds retention in memory and on disk, keeping offsets truthful', async () => {
    const dataDir = tempDir();
    const broker = new MemoryBroker({ dataDir, retention: 10 });
    for (let i = 0; i < 2500; i++) await broker.publish(STREAMS.telemetry, metrics(i));
    const got: Array<[number, number]> = [];
    await broker.subscribe(
      STREAMS.telemetry,
      { from: 'first' },
      (env, meta) => void got.push([meta.offset, epochOf(env)]),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBeLessThanOrEqual(1010);
    expect(got.at(-1)).toEqual([2499, 2499]);
    await broker.close();
    const reopened = new MemoryBroker({ dataDir, retention: 10 });
    const again: Array<[number, number]> = [];
    await reopened.subscribe(
      STREAMS.telemetry,
      { from: 'first' },
      (env, meta) => void again.push([meta.offset, epochOf(env)]),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(again).toEqual([...Array(10).keys()].map((i) => [2490 + i, 2490 + i]));
    await reopened.close();
  });

  it('skips a torn last line of a persisted stream', async () => {
    const dataDir = tempDir();
    const broker = new MemoryBroker({ dataDir });
    for (let i = 0; i < 3; i++) await broker.publish(STREAMS.telemetry, metrics(i));
    await broker.close();
    const file = path.join(dataDir, 'broker-vision.telemetry.jsonl');
    const { appendFileSync } = await import('node:fs');
    appendFileSync(file, '{"offset":3,"da');
    const reopened = new MemoryBroker({ dataDir });
    expect(reopened.endOffset(STREAMS.telemetry)).toBe(3);
    await reopened.publish(STREAMS.telemetry, metrics(3));
    expect(reopened.endOffset(STREAMS.telemetry)).toBe(4);
    await reopened.close();
  });

  it('delivers a long backlog completely to a named consumer', async () => {
    const broker = new MemoryBroker();
    let n = 0;
    await broker.subscribe(STREAMS.telemetry, { name: 'bench' }, () => void n++);
    const env = metrics(1);
    for (let i = 0; i < 20_000; i++) await broker.publish(STREAMS.telemetry, { ...env, id: `m-${i}` });
    const deadline = Date.now() + 5000;
    while (n < 20_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(n).toBe(20_000);
    await broker.close();
  });
});

describe(createBroker.name, () => {
  it('builds the in-process broker without a URL and the RabbitMQ adapter with one', async () => {
    const memory = await createBroker({ log: silentLogger() });
    expect(memory.adapter).toBe('memory');
    await memory.close();
    const rabbit = await createBroker({
      log: silentLogger(),
      rabbitmqUrl: 'rabbitmq-stream://guest:guest@127.0.0.1:1/',
    });
    expect(rabbit.adapter).toBe('rabbitmq');
    await rabbit.close();
  });
});
