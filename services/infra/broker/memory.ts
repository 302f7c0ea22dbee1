import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PlatformError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/log.js';
import type { Health } from '../health.js';
import { ConsumerSet, groupKey } from './consumers.js';
import {
  flushStreamFile,
  loadOffsetsFile,
  loadStreamFile,
  recordLine,
  saveOffsetsFile,
  type StoredRecord,
  type StreamLog,
} from './memory-stream.js';
import { MemorySubscription, type SubscriptionHost } from './memory-subscription.js';
import { parseMessage, type Envelope } from '../../../protocol/envelope.js';
import {
  DEFAULT_RETENTION,
  maxAgeMs,
  STREAMS,
  type Broker,
  type MessageHandler,
  type RetentionGap,
  type StartFrom,
  type StreamName,
  type StreamRetention,
  type SubscribeOptions,
  type Subscription,
} from './port.js';

/** Options of the in-process broker. */
export interface MemoryBrokerOptions {
  /** Folder for `broker-offsets.json` and the persisted streams; nothing is written without it. */
  dataDir?: string;
  log?: Logger;
  /** Prefix of the stream file names, so several brokers can share a folder. */
  streamPrefix?: string;
  /** Messages kept per stream (older ones are dropped from memory and disk). */
  retention?: number;
  /** Keep stream contents in `dataDir` as JSON lines (default true when dataDir is set). */
  persistStreams?: boolean;
  /** Recent envelope ids each subscription remembers to drop duplicates. */
  dedupeWindow?: number;
  /** Age and size bounds of each stream, in memory and on disk (default 7 days, 10 GB). */
  bounds?: StreamRetention;
  /** Called (besides a warning) when a named consumer's stored offset fell behind retention. */
  onRetentionGap?: (gap: RetentionGap) => void;
}

const OFFSETS_FILE = 'broker-offsets.json';
const OFFSETS_DEBOUNCE_MS = 200;
const STREAM_FLUSH_MS = 50;
/** How often age retention is applied to streams nobody appends to. */
const AGE_SWEEP_MAX_MS = 60_000;

const offsetKey = groupKey;

/**
 * The embedded broker: append-only in-process streams with offsets, replay, named consumers whose
 * offsets survive a restart (in `dataDir`), single active consumers, and optional persistence of
 * the streams as JSON lines so an embedded platform restart keeps its telemetry.
 */
export class MemoryBroker implements Broker, SubscriptionHost {
  readonly adapter = 'memory' as const;
  private readonly log: Logger;
  private readonly streams = new Map<StreamName, StreamLog>();
  private readonly offsets = new Map<string, number>();
  private readonly consumers: ConsumerSet<MemorySubscription>;
  private readonly retention: number;
  private readonly offsetsFile: string | undefined;
  private offsetsTimer: NodeJS.Timeout | undefined;
  private streamsTimer: NodeJS.Timeout | undefined;
  private readonly bounds: StreamRetention;
  private readonly maxAgeMs: number;
  private readonly ageSweeper: NodeJS.Timeout;
  private closed = false;

  constructor(opts: MemoryBrokerOptions = {}) {
    this.log = opts.log ?? silentLogger();
    this.retention = Math.max(1, opts.retention ?? 100_000);
    this.bounds = opts.bounds ?? DEFAULT_RETENTION;
    const ageMs = maxAgeMs(this.bounds.maxAge);
    if (ageMs === undefined)
      throw new PlatformError(
        'invalid_input',
        `stream max age "${this.bounds.maxAge}" is not a duration like 7D, 12h or 30m (RABBITMQ_STREAM_MAX_AGE)`,
      );
    this.maxAgeMs = ageMs;
    this.consumers = new ConsumerSet({
      log: this.log,
      dedupeWindow: opts.dedupeWindow,
      bounds: this.bounds,
      onRetentionGap: opts.onRetentionGap,
    });
    const persist = opts.dataDir !== undefined && (opts.persistStreams ?? true);
    if (opts.dataDir !== undefined) {
      mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
      this.offsetsFile = path.join(opts.dataDir, OFFSETS_FILE);
      loadOffsetsFile(this.offsetsFile, this.offsets, this.log);
    }
    for (const name of Object.values(STREAMS)) {
      const log: StreamLog = {
        name,
        base: 0,
        records: [],
        waiting: new Set(),
        pendingLines: [],
        fileLines: 0,
        bytes: 0,
        fileBytes: 0,
      };
      if (persist && opts.dataDir !== undefined) {
        log.file = path.join(opts.dataDir, `broker-${opts.streamPrefix ?? ''}${name}.jsonl`);
        loadStreamFile(log, this.retention, this.log);
        this.applyRetention(log);
      }
      this.streams.set(name, log);
    }
    this.ageSweeper = setInterval(
      () => {
        for (const log of this.streams.values()) this.applyRetention(log);
      },
      Math.min(AGE_SWEEP_MAX_MS, Math.max(1000, this.maxAgeMs / 10)),
    );
    this.ageSweeper.unref();
  }

  /** Validates and appends one envelope; resolves once it is in the stream. */
  async publish(stream: StreamName, envelope: Envelope): Promise<void> {
    const checked = parseMessage(envelope);
    if (!checked.ok)
      throw new PlatformError(
        'invalid_input',
        `cannot publish to ${stream}: ${checked.error}; build messages with makeEnvelope()`,
      );
    this.append(stream, { message: checked.message });
  }

  /** The age and size bounds this broker keeps each stream within. */
  streamRetention(): StreamRetention {
    return { ...this.bounds };
  }

  /** Offset of the oldest message the stream still keeps. */
  firstOffset(stream: StreamName): number {
    return this.streamLog(stream).base;
  }

  /** Appends bytes without validation, as a faulty producer would; consumers log and skip what is invalid. */
  appendRaw(stream: StreamName, data: string | Buffer): number {
    return this.append(stream, { data: typeof data === 'string' ? data : data.toString('utf8') });
  }

  async subscribe(
    stream: StreamName,
    opts: SubscribeOptions,
    handler: MessageHandler,
  ): Promise<Subscription> {
    if (this.closed)
      throw new PlatformError('unavailable', 'the in-process broker is closed; create a new one');
    const log = this.streamLog(stream);
    const { sub, active } = this.consumers.add(
      stream,
      opts,
      handler,
      (delivery) => new MemorySubscription(this, log, opts, delivery),
    );
    if (active) sub.start();
    return sub;
  }

  async health(): Promise<Health> {
    return this.closed
      ? { port: 'broker', adapter: 'memory', ok: false, detail: 'closed' }
      : { port: 'broker', adapter: 'memory', ok: true };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.consumers.values().map((s) => s.close()));
    this.closed = true;
    clearInterval(this.ageSweeper);
    this.flushStreams();
    this.flushOffsets();
  }

  /** The offset the next appended message will get. */
  endOffset(stream: StreamName): number {
    const log = this.streamLog(stream);
    return log.base + log.records.length;
  }

  /** @internal Where a subscription starts: after its stored offset, else at `from`. */
  startPosition(log: StreamLog, opts: SubscribeOptions): number {
    if (opts.name !== undefined) {
      const stored = this.offsets.get(offsetKey(log.name, opts.name));
      if (stored !== undefined) return stored + 1;
    }
    const from: StartFrom = opts.from ?? 'next';
    if (from === 'first') return log.base;
    if (from === 'next') return log.base + log.records.length;
    return Math.max(log.base, from.offset);
  }

  /** @internal Records the last handled offset of a named consumer. */
  storeOffset(stream: StreamName, name: string, offset: number): void {
    this.offsets.set(offsetKey(stream, name), offset);
    if (this.offsetsFile !== undefined && this.offsetsTimer === undefined) {
      this.offsetsTimer = setTimeout(() => this.flushOffsets(), OFFSETS_DEBOUNCE_MS);
      this.offsetsTimer.unref();
    }
  }

  /** @internal A named consumer skipped messages retention dropped before it read them. */
  reportGap(gap: RetentionGap): void {
    this.consumers.reportGap(gap);
  }

  /** @internal Called when a subscription closed: hands a single-active group to the next member. */
  detach(sub: MemorySubscription, stream: StreamName, opts: SubscribeOptions): void {
    const next = this.consumers.remove(stream, opts, sub);
    if (next !== undefined && !this.closed) next.start();
  }

  private streamLog(stream: StreamName): StreamLog {
    const log = this.streams.get(stream);
    if (log === undefined)
      throw new PlatformError(
        'invalid_input',
        `unknown stream "${stream}"; streams: ${Object.values(STREAMS).join(', ')}`,
      );
    return log;
  }

  private append(stream: StreamName, content: Pick<StoredRecord, 'data' | 'message'>): number {
    if (this.closed)
      throw new PlatformError('unavailable', 'the in-process broker is closed; create a new one');
    const log = this.streamLog(stream);
    const offset = log.base + log.records.length;
    const record: StoredRecord = { ...content, ts: Date.now(), bytes: 0 };
    // Counted as stored on disk (with offset and time), as RabbitMQ counts its segment files.
    const line = recordLine(offset, record);
    record.bytes = Buffer.byteLength(line);
    log.records.push(record);
    log.bytes += record.bytes;
    if (log.file !== undefined) {
      log.pendingLines.push(line);
      if (this.streamsTimer === undefined) {
        this.streamsTimer = setTimeout(() => this.flushStreams(), STREAM_FLUSH_MS);
        this.streamsTimer.unref();
      }
    }
    this.applyRetention(log);
    if (log.waiting.size > 0) {
      const waiting = [...log.waiting];
      log.waiting.clear();
      for (const sub of waiting) sub.wake();
    }
    return offset;
  }

  /**
   * Drops the oldest messages while the stream is older than the max age, larger than the max
   * bytes, or (the `retention` option) longer than that many messages; the last one always stays.
   */
  private applyRetention(log: StreamLog): void {
    const oldest = Date.now() - this.maxAgeMs;
    let drop = 0;
    let bytes = log.bytes;
    const overCount = log.records.length > this.retention + Math.max(1000, this.retention / 10);
    while (drop < log.records.length - 1) {
      const r = log.records[drop]!;
      const keep = log.records.length - drop;
      if (r.ts >= oldest && bytes <= this.bounds.maxBytes && !(overCount && keep > this.retention)) break;
      bytes -= r.bytes;
      drop++;
    }
    if (drop === 0) return;
    log.records.splice(0, drop);
    log.base += drop;
    log.bytes = bytes;
    // The file keeps at most one segment beyond what memory holds; then it is rewritten.
    if (
      log.file !== undefined &&
      this.streamsTimer === undefined &&
      log.fileBytes > log.bytes + this.bounds.maxSegmentSizeBytes
    ) {
      this.streamsTimer = setTimeout(() => this.flushStreams(), STREAM_FLUSH_MS);
      this.streamsTimer.unref();
    }
  }

  private flushStreams(): void {
    clearTimeout(this.streamsTimer);
    this.streamsTimer = undefined;
    const bounds = { retention: this.retention, maxSegmentSizeBytes: this.bounds.maxSegmentSizeBytes };
    for (const log of this.streams.values()) flushStreamFile(log, bounds, this.log);
  }

  private flushOffsets(): void {
    clearTimeout(this.offsetsTimer);
    this.offsetsTimer = undefined;
    if (this.offsetsFile !== undefined) saveOffsetsFile(this.offsetsFile, this.offsets, this.log);
  }
}
