import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeEnvelope, MemoryBroker, STREAMS, type Envelope } from '../services/infra/broker/index.js';
import { silentLogger } from '../core/log.js';
import { TelemetryOutbox } from './outbox.js';
import { FlakyBroker } from './platform.fixtures.js';

let dir: string;
let inner: MemoryBroker;
let received: Envelope[];

const note = (i: number) => makeEnvelope('notify', { level: 'info', text: `m${i}` }, { source: 'edge-t' });
const texts = (envs: Envelope[]) => envs.map((e) => (e.payload as { text: string }).text);

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edge-outbox-'));
  inner = new MemoryBroker();
  received = [];
  await inner.subscribe(STREAMS.telemetry, { from: 'first' }, (e) => {
    received.push(e);
  });
});
afterEach(async () => {
  await inner.close();
  await rm(dir, { recursive: true, force: true });
});

describe(TelemetryOutbox.name, () => {
  it('sends directly while the broker is up', async () => {
    const box = new TelemetryOutbox({
      broker: inner,
      file: path.join(dir, 'buf.jsonl'),
      log: silentLogger(),
    });
    await box.start();
    expect(await box.publish(STREAMS.telemetry, note(1))).toBe('sent');
    await expect.poll(() => texts(received)).toEqual(['m1']);
    await box.stop();
  });

  it('buffers on disk within its bound (oldest dropped), survives a restart and flushes in order', async () => {
    const flaky = new FlakyBroker(inner);
    flaky.down = true;
    const file = path.join(dir, 'buf.jsonl');
    const box = new TelemetryOutbox({ broker: flaky, file, log: silentLogger(), maxRecords: 5, retryMs: 20 });
    await box.start();
    for (let i = 0; i < 8; i++) expect(await box.publish(STREAMS.telemetry, note(i))).toBe('buffered');
    expect(box.buffered).toBe(5);
    expect(box.dropped).toBe(3);
    await box.stop();
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(
      lines.map((l) => (JSON.parse(l) as { envelope: { payload: { text: string } } }).envelope.payload.text),
    ).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);

    // A new process: still offline, then the broker comes back.
    const again = new TelemetryOutbox({ broker: flaky, file, log: silentLogger(), retryMs: 20 });
    await again.start();
    expect(again.buffered).toBe(5);
    await again.publish(STREAMS.telemetry, note(8));
    flaky.down = false;
    await expect.poll(() => again.buffered, { timeout: 5000 }).toBe(0);
    await again.publish(STREAMS.telemetry, note(9));
    await expect.poll(() => texts(received)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    await again.stop();
    expect((await readFile(file, 'utf8')).trim()).toBe('');
  });

  it('drops a message the broker rejects as invalid instead of blocking the queue', async () => {
    const box = new TelemetryOutbox({
      broker: inner,
      file: path.join(dir, 'buf.jsonl'),
      log: silentLogger(),
    });
    await box.start();
    const bad = { ...note(1), payload: { level: 'loud' } } as Envelope;
    expect(await box.publish(STREAMS.telemetry, bad)).toBe('invalid');
    expect(await box.publish(STREAMS.telemetry, note(2))).toBe('sent');
    expect(box.buffered).toBe(0);
    await box.stop();
  });
});
