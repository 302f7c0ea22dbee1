import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isPlatformError } from '../core/errors.js';
import {
  envelopeSchema,
  STREAMS,
  type Broker,
  type Envelope,
  type StreamName,
} from '../services/infra/broker/index.js';
import type { Logger } from '../core/log.js';

/** Options of `TelemetryOutbox`. */
export interface TelemetryOutboxOptions {
  broker: Broker;
  /** JSON-lines file holding messages not yet confirmed by the broker. */
  file: string;
  /** Most messages kept while offline; the oldest are dropped beyond it (default 10 000). */
  maxRecords?: number;
  /** Most bytes kept while offline (default 8 MiB). */
  maxBytes?: number;
  /** First retry delay; doubles up to `maxRetryMs` while the broker stays unreachable (default 500 ms). */
  retryMs?: number;
  maxRetryMs?: number;
  log: Logger;
}

interface Entry {
  stream: StreamName;
  envelope: Envelope;
  line: string;
}

const STREAM_NAMES = new Set<string>(Object.values(STREAMS));

/**
 * Publishes telemetry in order, buffering on disk while the broker is unreachable: once a publish
 * fails, this and every later message go to a bounded JSON-lines file (oldest dropped, counted)
 * and are flushed in their original order when the broker answers again, also after a restart.
 */
export class TelemetryOutbox {
  private queue: Entry[] = [];
  private queueBytes = 0;
  private droppedCount = 0;
  private invalidCount = 0;
  private sentCount = 0;
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private fileOps: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** Entries already written to the file; the file is rewritten whole when `rewriteNeeded`. */
  private onDisk = new WeakSet<Entry>();
  private rewriteNeeded = false;
  private readonly maxRecords: number;
  private readonly maxBytes: number;

  constructor(private readonly opts: TelemetryOutboxOptions) {
    this.maxRecords = Math.max(1, opts.maxRecords ?? 10_000);
    this.maxBytes = Math.max(1024, opts.maxBytes ?? 8 * 1024 * 1024);
    this.retryDelay = opts.retryMs ?? 500;
  }

  /** Messages waiting for the broker. */
  get buffered(): number {
    return this.queue.length;
  }

  /** Messages dropped because the buffer was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  get sent(): number {
    return this.sentCount;
  }

  /** Loads messages left from a previous run and starts flushing them. */
  async start(): Promise<void> {
    this.stopped = false;
    await mkdir(path.dirname(this.opts.file), { recursive: true });
    let text = '';
    try {
      text = await readFile(this.opts.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let bad = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const raw = JSON.parse(line) as { stream?: unknown; envelope?: unknown };
        const env = envelopeSchema.safeParse(raw.envelope);
        if (typeof raw.stream !== 'string' || !STREAM_NAMES.has(raw.stream) || !env.success)
          throw new Error('bad line');
        const entry: Entry = {
          stream: raw.stream as StreamName,
          envelope: env.data as Envelope,
          line: `${line}\n`,
        };
        this.queue.push(entry);
        this.onDisk.add(entry);
        this.queueBytes += line.length + 1;
      } catch {
        bad++;
      }
    }
    if (bad > 0)
      this.opts.log.warn({ file: this.opts.file, bad }, 'skipped unreadable lines in the telemetry buffer');
    if (this.trim() || bad > 0) await this.sync(true);
    if (this.queue.length > 0) {
      this.opts.log.info({ buffered: this.queue.length }, 'flushing telemetry buffered before the restart');
      this.kick();
    }
  }

  /** Sends now when possible, otherwise buffers; never throws for a broker outage. */
  async publish(stream: StreamName, envelope: Envelope): Promise<'sent' | 'buffered' | 'invalid'> {
    if (this.queue.length === 0 && this.flushing === undefined && !this.stopped) {
      try {
        await this.opts.broker.publish(stream, envelope);
        this.sentCount++;
        return 'sent';
      } catch (err) {
        if (this.rejectsForGood(err, envelope)) return 'invalid';
        this.opts.log.warn(
          { err: (err as Error).message, type: envelope.type },
          'broker unreachable; buffering telemetry on disk',
        );
      }
    }
    const line = `${JSON.stringify({ stream, envelope })}\n`;
    this.queue.push({ stream, envelope, line });
    this.queueBytes += line.length;
    this.trim();
    await this.sync();
    this.kick();
    return 'buffered';
  }

  /** Tries to send everything buffered now; resolves when the buffer is empty or the broker failed again. */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.drain().finally(() => {
      this.flushing = undefined;
      // Messages buffered while the last pass was finishing go out now.
      if (this.queue.length > 0 && this.retryTimer === undefined && !this.stopped) void this.flush();
    });
    return this.flushing;
  }

  /** Stops retrying; the buffer stays on disk for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.flushing;
    await this.fileOps;
  }

  private async drain(): Promise<void> {
    let sent = 0;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const head = this.queue[0]!;
        try {
          await this.opts.broker.publish(head.stream, head.envelope);
          this.sentCount++;
        } catch (err) {
          if (!this.rejectsForGood(err, head.envelope)) {
            this.scheduleRetry();
            return;
          }
        }
        // The head may have been dropped by trim() while publishing.
        if (this.queue[0] === head) {
          this.queue.shift();
          this.queueBytes -= head.line.length;
        }
        sent++;
      }
      this.retryDelay = this.opts.retryMs ?? 500;
      if (sent > 0) this.opts.log.info({ sent }, 'flushed buffered telemetry');
    } finally {
      if (sent > 0) await this.sync(true);
    }
  }

  private kick(): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    void this.flush();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush();
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, this.opts.maxRetryMs ?? 30_000);
  }

  /** A message the broker refuses as invalid will never go through: log and drop it instead of blocking the rest. */
  private rejectsForGood(err: unknown, envelope: Envelope): boolean {
    if (!isPlatformError(err, 'invalid_input')) return false;
    this.invalidCount++;
    this.opts.log.error(
      { err: (err as Error).message, type: envelope.type, invalid: this.invalidCount },
      'dropping telemetry the broker rejects as invalid',
    );
    return true;
  }

  /** Drops the oldest entries beyond the bounds; true when something was dropped. */
  private trim(): boolean {
    let dropped = 0;
    while (
      this.queue.length > this.maxRecords ||
      (this.queueBytes > this.maxBytes && this.queue.length > 1)
    ) {
      const old = this.queue.shift()!;
      this.queueBytes -= old.line.length;
      dropped++;
    }
    if (dropped > 0) {
      this.rewriteNeeded = true;
      this.droppedCount += dropped;
      this.opts.log.warn(
        { dropped, total: this.droppedCount },
        'telemetry buffer full; dropped the oldest messages',
      );
    }
    return dropped > 0;
  }

  /** Brings the file in line with the queue: appends new entries, or rewrites it after removals. Serialised. */
  private sync(rewrite = false): Promise<void> {
    if (rewrite) this.rewriteNeeded = true;
    const next = this.fileOps
      .then(async () => {
        if (this.rewriteNeeded) {
          this.rewriteNeeded = false;
          const tmp = `${this.opts.file}.${randomBytes(4).toString('hex')}.tmp`;
          const entries = [...this.queue];
          await writeFile(tmp, entries.map((e) => e.line).join(''));
          await rename(tmp, this.opts.file);
          this.onDisk = new WeakSet(entries);
          return;
        }
        const fresh = this.queue.filter((e) => !this.onDisk.has(e));
        if (fresh.length === 0) return;
        await appendFile(this.opts.file, fresh.map((e) => e.line).join(''));
        for (const e of fresh) this.onDisk.add(e);
      })
      .catch((err: unknown) => {
        this.opts.log.error(
          { err: (err as Error).message, file: this.opts.file },
          'could not write the telemetry buffer; check the data folder is writable',
        );
      });
    this.fileOps = next;
    return next;
  }
}
