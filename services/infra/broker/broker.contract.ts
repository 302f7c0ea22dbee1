import { afterEach, describe, expect, it } from 'vitest';
import { makeEnvelope, type Envelope } from '../../../protocol/envelope.js';
import {
  STREAMS,
  type Broker,
  type RetentionGap,
  type StreamName,
  type StreamRetention,
  type Subscription,
} from './port.js';

/** What each adapter's test hands the contract: a fresh broker on fresh streams, and a way to append raw bytes. */
export interface BrokerFixture {
  broker: Broker;
  /** Appends bytes without validation, as a faulty producer would. */
  publishRaw(stream: StreamName, data: string): Promise<void>;
  cleanup?: () => Promise<void>;
}

const T = STREAMS.telemetry;

/** A valid telemetry envelope numbered by `epoch`. */
export function metrics(epoch: number, jobId = 'job-1'): Envelope {
  return makeEnvelope(
    'train.metrics',
    { jobId, attempt: 1, epoch, epochs: 1000, kind: 'epoch', metrics: { mAP50: 0.5, box_loss: 1.25 } },
    { source: 'runner-test' },
  );
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const settle = (ms = 300) => new Promise((r) => setTimeout(r, ms));

/** Builds a broker whose streams keep only `bounds`, telling `onGap` about retention gaps. */
export type BoundedBrokerInit = (
  bounds: StreamRetention,
  onGap: (gap: RetentionGap) => void,
) => Promise<BrokerFixture>;

/** A message of about `bytes` bytes (padding in the payload), numbered by `epoch`. */
function padded(epoch: number, bytes: number): Envelope {
  return makeEnvelope(
    'train.log',
    { jobId: 'job-1', attempt: 1, seq: epoch, lines: ['x'.repeat(bytes)] },
    { source: 'runner-test' },
  );
}

/**
 * The contract every Broker adapter honours; each adapter's test calls this with its initializer,
 * and with `bounded` when it can build one with small retention bounds.
 */
export function brokerContract(
  name: string,
  init: () => Promise<BrokerFixture>,
  opts: { bounded?: BoundedBrokerInit } = {},
): void {
  describe(`Broker contract: ${name}`, () => {
    let fixture: BrokerFixture | undefined;
    const open: Subscription[] = [];

    async function setup(): Promise<BrokerFixture> {
      fixture = await init();
      return fixture;
    }

    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
      await fixture?.broker.close();
      await fixture?.cleanup?.();
      fixture = undefined;
    });

    it('reports healthy', async () => {
      const { broker } = await setup();
      await broker.subscribe(T, { from: 'first' }, () => undefined).then((s) => open.push(s));
      expect(await broker.health()).toMatchObject({ port: 'broker', adapter: broker.adapter, ok: true });
    });

    it('delivers published messages in order with increasing offsets', async () => {
      const { broker } = await setup();
      const got: Array<{ epoch: number; offset: number; stream: string }> = [];
      open.push(
        await broker.subscribe(
          T,
          { from: 'first' },
          (env, meta) => void got.push({ epoch: (env.payload as { epoch: number }).epoch, ...meta }),
        ),
      );
      for (let i = 0; i < 50; i++) await broker.publish(T, metrics(i));
      await waitFor(() => got.length === 50, '50 messages');
      expect(got.map((g) => g.epoch)).toEqual([...Array(50).keys()]);
      expect(got.every((g) => g.stream === T)).toBe(true);
      for (let i = 1; i < got.length; i++) expect(got[i]!.offset).toBeGreaterThan(got[i - 1]!.offset);
    });

    it('keeps the two streams apart', async () => {
      const { broker } = await setup();
      const control: string[] = [];
      open.push(
        await broker.subscribe(STREAMS.control, { from: 'first' }, (env) => void control.push(env.type)),
      );
      await broker.publish(T, metrics(1));
      await broker.publish(
        STREAMS.control,
        makeEnvelope('train.cancel', { jobId: 'j', attempt: 1 }, { source: 'platform' }),
      );
      await waitFor(() => control.length === 1, 'control message');
      await settle();
      expect(control).toEqual(['train.cancel']);
    });

    it('starts from first, next, or a given offset', async () => {
      const { broker } = await setup();
      for (let i = 0; i < 5; i++) await broker.publish(T, metrics(i));
      const all: Array<{ epoch: number; offset: number }> = [];
      open.push(
        await broker.subscribe(
          T,
          { from: 'first' },
          (env, meta) =>
            void all.push({ epoch: (env.payload as { epoch: number }).epoch, offset: meta.offset }),
        ),
      );
      await waitFor(() => all.length === 5, 'replay from first');

      const fromOffset: number[] = [];
      open.push(
        await broker.subscribe(
          T,
          { from: { offset: all[2]!.offset } },
          (env) => void fromOffset.push((env.payload as { epoch: number }).epoch),
        ),
      );
      const fromNext: number[] = [];
      open.push(
        await broker.subscribe(
          T,
          { from: 'next' },
          (env) => void fromNext.push((env.payload as { epoch: number }).epoch),
        ),
      );
      await waitFor(() => fromOffset.length === 3, 'replay from offset');
      await broker.publish(T, metrics(5));
      await waitFor(() => fromNext.length === 1 && fromOffset.length === 4, 'the new message');
      expect(fromOffset).toEqual([2, 3, 4, 5]);
      expect(fromNext).toEqual([5]);
    });

    it('resumes a named consumer after close and reopen with no loss and no duplicate', async () => {
      const { broker } = await setup();
      const got: number[] = [];
      const handler = (env: Envelope) => void got.push((env.payload as { epoch: number }).epoch);
      const first = await broker.subscribe(T, { name: 'metrics-writer', from: 'first' }, handler);
      for (let i = 0; i < 10; i++) await broker.publish(T, metrics(i));
      await waitFor(() => got.length === 10, 'first 10');
      await first.close();
      for (let i = 10; i < 20; i++) await broker.publish(T, metrics(i));
      open.push(await broker.subscribe(T, { name: 'metrics-writer', from: 'first' }, handler));
      await waitFor(() => got.length >= 20, 'next 10');
      await settle();
      expect(got).toEqual([...Array(20).keys()]);
    });

    it('logs and skips invalid JSON, invalid payloads and unknown types, delivering the valid ones around them', async () => {
      const { broker, publishRaw } = await setup();
      const got: number[] = [];
      open.push(
        await broker.subscribe(
          T,
          { from: 'first' },
          (env) => void got.push((env.payload as { epoch: number }).epoch),
        ),
      );
      await broker.publish(T, metrics(1));
      await publishRaw(T, '{not json');
      await publishRaw(T, JSON.stringify({ ...metrics(99), payload: { jobId: 'x', epoch: 'seven' } }));
      await publishRaw(T, JSON.stringify({ ...metrics(98), type: 'train.unknown' }));
      await publishRaw(T, JSON.stringify({ hello: 'world' }));
      await broker.publish(T, metrics(2));
      await waitFor(() => got.length === 2, 'the two valid messages');
      await settle();
      expect(got).toEqual([1, 2]);
    });

    it('refuses to publish an invalid envelope', async () => {
      const { broker } = await setup();
      const bad = { ...metrics(1), payload: { jobId: 'j' } } as Envelope;
      await expect(broker.publish(T, bad)).rejects.toMatchObject({ code: 'invalid_input' });
    });

    it('delivers a duplicated envelope id once', async () => {
      const { broker } = await setup();
      const got: string[] = [];
      open.push(await broker.subscribe(T, { from: 'first' }, (env) => void got.push(env.id)));
      const env = metrics(1);
      await broker.publish(T, env);
      await broker.publish(T, env);
      const other = metrics(2);
      await broker.publish(T, other);
      await waitFor(() => got.length === 2, 'two distinct messages');
      await settle();
      expect(got).toEqual([env.id, other.id]);
    });

    it('keeps consuming after a handler throws, and counts the failed message as handled', async () => {
      const { broker } = await setup();
      const got: number[] = [];
      const handler = (env: Envelope) => {
        const epoch = (env.payload as { epoch: number }).epoch;
        got.push(epoch);
        if (epoch === 1) throw new Error('handler bug');
      };
      const sub = await broker.subscribe(T, { name: 'flaky', from: 'first' }, handler);
      for (let i = 0; i < 3; i++) await broker.publish(T, metrics(i));
      await waitFor(() => got.length === 3, 'three messages');
      await sub.close();
      open.push(await broker.subscribe(T, { name: 'flaky', from: 'first' }, handler));
      await broker.publish(T, metrics(3));
      await waitFor(() => got.length === 4, 'the fourth');
      await settle();
      expect(got).toEqual([0, 1, 2, 3]);
    });

    it('awaits each handler before the next message of a subscription', async () => {
      const { broker } = await setup();
      let running = 0;
      let overlap = false;
      const got: number[] = [];
      open.push(
        await broker.subscribe(T, { from: 'first' }, async (env) => {
          running++;
          if (running > 1) overlap = true;
          await new Promise((r) => setTimeout(r, 2));
          got.push((env.payload as { epoch: number }).epoch);
          running--;
        }),
      );
      await Promise.all([...Array(20).keys()].map((i) => broker.publish(T, metrics(i))));
      await waitFor(() => got.length === 20, '20 messages');
      expect(overlap).toBe(false);
      expect(got).toEqual([...got].sort((a, b) => a - b));
    });

    it('lets one of several same-named single active consumers receive, and hands over on close', async () => {
      const { broker } = await setup();
      const a: number[] = [];
      const b: number[] = [];
      const subA = await broker.subscribe(
        T,
        { name: 'sac', singleActive: true, from: 'first' },
        (env) => void a.push((env.payload as { epoch: number }).epoch),
      );
      open.push(
        await broker.subscribe(
          T,
          { name: 'sac', singleActive: true, from: 'first' },
          (env) => void b.push((env.payload as { epoch: number }).epoch),
        ),
      );
      for (let i = 0; i < 3; i++) await broker.publish(T, metrics(i));
      await waitFor(() => a.length === 3, 'active consumer');
      await settle();
      expect(b).toEqual([]);
      await subA.close();
      for (let i = 3; i < 6; i++) await broker.publish(T, metrics(i));
      await waitFor(() => b.length === 3, 'hand-over');
      await settle();
      expect(a).toEqual([0, 1, 2]);
      expect(b).toEqual([3, 4, 5]);
    });

    const bounded = opts.bounded;
    if (bounded !== undefined)
      it('resumes a named consumer whose offset fell behind retention at the oldest kept message, and reports the gap', async () => {
        const gaps: RetentionGap[] = [];
        fixture = await bounded(
          { maxAge: '7D', maxBytes: 20_000, maxSegmentSizeBytes: 4_000 },
          (gap) => void gaps.push(gap),
        );
        const { broker } = fixture;
        const seqOf = (env: Envelope) => (env.payload as { seq: number }).seq;
        const early: number[] = [];
        const first = await broker.subscribe(T, { name: 'slow-reader', from: 'first' }, (env, meta) => {
          early.push(meta.offset);
        });
        await broker.publish(T, padded(0, 200));
        await waitFor(() => early.length === 1, 'the first message');
        await first.close();

        // ~75 KB through a 20 KB stream: the slow reader's next message is long gone.
        const total = 300;
        for (let i = 1; i <= total; i++) await broker.publish(T, padded(i, 200));
        await settle(1000);
        const got: Array<{ seq: number; offset: number }> = [];
        open.push(
          await broker.subscribe(T, { name: 'slow-reader', from: 'first' }, (env, meta) => {
            got.push({ seq: seqOf(env), offset: meta.offset });
          }),
        );
        await waitFor(() => got.at(-1)?.seq === total, 'the last message');
        expect(got.length).toBeLessThan(total);
        expect(gaps).toEqual([
          { stream: T, consumer: 'slow-reader', expected: early[0]! + 1, resumedAt: got[0]!.offset },
        ]);
        expect(got[0]!.offset).toBeGreaterThan(early[0]! + 1);
        // From where it resumed, nothing more is missing.
        expect(got.map((g) => g.seq)).toEqual(
          Array.from({ length: got.length }, (_, i) => total - got.length + 1 + i),
        );
        // Resuming normally again (its stored offset is kept) is no gap, whatever offsets the server used meanwhile.
        await open.pop()!.close();
        await broker.publish(T, padded(total + 1, 200));
        const after: number[] = [];
        open.push(
          await broker.subscribe(
            T,
            { name: 'slow-reader', from: 'first' },
            (env) => void after.push(seqOf(env)),
          ),
        );
        await waitFor(() => after.length === 1, 'the message after the reopen');
        expect(after).toEqual([total + 1]);
        expect(gaps).toHaveLength(1);
        // An unnamed reader from the first kept message reports nothing.
        const anon: number[] = [];
        open.push(await broker.subscribe(T, { from: 'first' }, (env) => void anon.push(seqOf(env))));
        await waitFor(() => anon.at(-1) === total + 1, 'the unnamed reader');
        expect(gaps).toHaveLength(1);
      }, 30_000);
  });
}
