import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeEnvelope, type Envelope } from '../../../protocol/envelope.js';
import { MemoryBroker } from './memory.js';
import { STREAMS, type RetentionGap } from './port.js';

const T = STREAMS.telemetry;
const line = (seq: number, bytes = 200): Envelope =>
  makeEnvelope('train.log', { jobId: 'j', attempt: 1, seq, lines: ['x'.repeat(bytes)] }, { source: 'test' });

describe('MemoryBroker retention', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vbroker-ret-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps a stream within its byte bound in memory and on disk (at most one segment more), across a restart', async () => {
    const dir = tempDir();
    const bounds = { maxAge: '7D', maxBytes: 20_000, maxSegmentSizeBytes: 5_000 };
    const broker = new MemoryBroker({ dataDir: dir, bounds });
    for (let i = 0; i < 1000; i++) await broker.publish(T, line(i));
    await broker.close();
    const file = path.join(dir, `broker-${T}.jsonl`);
    // ~300 KB went through: the file holds the kept ~20 KB plus at most one segment.
    expect(statSync(file).size).toBeLessThanOrEqual(bounds.maxBytes + bounds.maxSegmentSizeBytes + 1000);
    expect(broker.firstOffset(T)).toBeGreaterThan(900);

    const again = new MemoryBroker({ dataDir: dir, bounds });
    expect(again.firstOffset(T)).toBe(broker.firstOffset(T));
    expect(again.endOffset(T)).toBe(1000);
    const seqs: number[] = [];
    const sub = await again.subscribe(
      T,
      { from: 'first' },
      (env) => void seqs.push((env.payload as { seq: number }).seq),
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(seqs.at(-1)).toBe(999);
    expect(seqs[0]).toBe(broker.firstOffset(T));
    await sub.close();
    await again.close();
  });

  it('drops messages older than the max age, also those it reads back from disk', async () => {
    const dir = tempDir();
    const file = path.join(dir, `broker-${T}.jsonl`);
    const old = Date.now() - 2 * 3_600_000;
    const lines = [0, 1, 2]
      .map((i) => JSON.stringify({ offset: i, ts: old, data: JSON.stringify(line(i)) }))
      .join('\n');
    writeFileSync(
      file,
      `${lines}\n${JSON.stringify({ offset: 3, ts: Date.now(), data: JSON.stringify(line(3)) })}\n`,
    );
    const broker = new MemoryBroker({
      dataDir: dir,
      bounds: { maxAge: '1h', maxBytes: 1e9, maxSegmentSizeBytes: 1e6 },
    });
    expect(broker.firstOffset(T)).toBe(3);
    expect(broker.endOffset(T)).toBe(4);
    await broker.close();
  });

  it('reads stream files written before retention (lines without a time) as fresh', async () => {
    const dir = tempDir();
    writeFileSync(
      path.join(dir, `broker-${T}.jsonl`),
      [0, 1].map((i) => JSON.stringify({ offset: i, data: JSON.stringify(line(i)) })).join('\n') + '\n',
    );
    const broker = new MemoryBroker({
      dataDir: dir,
      bounds: { maxAge: '1h', maxBytes: 1e9, maxSegmentSizeBytes: 1e6 },
    });
    expect([broker.firstOffset(T), broker.endOffset(T)]).toEqual([0, 2]);
    await broker.close();
  });

  it('tells a named consumer restarted after its messages expired where it resumed', async () => {
    const dir = tempDir();
    const gaps: RetentionGap[] = [];
    const bounds = { maxAge: '7D', maxBytes: 5_000, maxSegmentSizeBytes: 1_000 };
    const first = new MemoryBroker({ dataDir: dir, bounds, onRetentionGap: (g) => void gaps.push(g) });
    const sub = await first.subscribe(T, { name: 'indexer', from: 'first' }, () => undefined);
    await first.publish(T, line(0));
    await new Promise((r) => setTimeout(r, 50));
    await sub.close();
    for (let i = 1; i < 200; i++) await first.publish(T, line(i));
    await first.close();

    const second = new MemoryBroker({ dataDir: dir, bounds, onRetentionGap: (g) => void gaps.push(g) });
    const seqs: number[] = [];
    const again = await second.subscribe(
      T,
      { name: 'indexer' },
      (env) => void seqs.push((env.payload as { seq: number }).seq),
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(gaps).toEqual([{ stream: T, consumer: 'indexer', expected: 1, resumedAt: second.firstOffset(T) }]);
    expect(seqs[0]).toBe(second.firstOffset(T));
    expect(seqs.at(-1)).toBe(199);
    await again.close();
    await second.close();
  });

  it('refuses a max age it cannot read', () => {
    expect(
      () => new MemoryBroker({ bounds: { maxAge: '7 days', maxBytes: 1, maxSegmentSizeBytes: 1 } }),
    ).toThrow(/RABBITMQ_STREAM_MAX_AGE/);
  });
});
