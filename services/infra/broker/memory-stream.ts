import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../../../core/log.js';
import type { Message } from '../../../protocol/envelope.js';
import type { StreamName } from './port.js';

const offsetsFileSchema = z.record(z.string(), z.number().int().nonnegative());
const streamLineSchema = z.object({
  offset: z.number().int().nonnegative(),
  /** Append time (epoch ms); lines written before retention existed have none. */
  ts: z.number().int().nonnegative().optional(),
  data: z.string(),
});

/** One stored message: validated at publish (`message`), or raw bytes that consumers validate (`data`). */
export interface StoredRecord {
  message?: Message;
  data?: string;
  /** Append time, epoch ms. */
  ts: number;
  /** Bytes of the record's line on disk, counted against the size bound. */
  bytes: number;
}

/** One stream of the in-process broker: the records it keeps, who waits for the next one, and its file. */
export interface StreamLog {
  name: StreamName;
  /** Offset of records[0]. */
  base: number;
  records: StoredRecord[];
  waiting: Set<{ wake(): void }>;
  file?: string;
  pendingLines: string[];
  fileLines: number;
  /** Bytes of the records kept in memory. */
  bytes: number;
  /** Bytes of the stream file on disk. */
  fileBytes: number;
}

const recordText = (r: Pick<StoredRecord, 'data' | 'message'>): string => r.data ?? JSON.stringify(r.message);

/** A record's line in the stream file (JSON lines: offset, append time, the message text). */
export const recordLine = (offset: number, r: StoredRecord): string =>
  `{"offset":${offset},"ts":${r.ts},"data":${JSON.stringify(recordText(r))}}\n`;

/**
 * Writes a stream's pending lines to its file, or rewrites the file from memory when it holds more than
 * twice `retention` lines or more than one segment beyond what memory keeps. Logs (never throws) on failure.
 */
export function flushStreamFile(
  log: StreamLog,
  bounds: { retention: number; maxSegmentSizeBytes: number },
  logger: Logger,
): void {
  if (log.file === undefined) return;
  const pendingBytes = log.pendingLines.reduce((n, l) => n + Buffer.byteLength(l), 0);
  const rewrite =
    log.fileLines + log.pendingLines.length > 2 * bounds.retention ||
    log.fileBytes + pendingBytes > log.bytes + bounds.maxSegmentSizeBytes;
  if (log.pendingLines.length === 0 && !rewrite) return;
  try {
    if (rewrite) {
      const lines = log.records.map((r, i) => recordLine(log.base + i, r));
      writeFileSync(`${log.file}.tmp`, lines.join(''), { mode: 0o600 });
      renameSync(`${log.file}.tmp`, log.file);
      log.fileLines = lines.length;
      log.fileBytes = lines.reduce((n, l) => n + Buffer.byteLength(l), 0);
    } else {
      appendFileSync(log.file, log.pendingLines.join(''), { mode: 0o600 });
      log.fileLines += log.pendingLines.length;
      log.fileBytes += pendingBytes;
    }
  } catch (err) {
    logger.error({ err, file: log.file }, 'could not persist broker stream; check DATA_DIR is writable');
  }
  log.pendingLines = [];
}

/**
 * Loads a stream's file into `log`, keeping offsets truthful (a gap restarts the stream at the later
 * offset) and at most `retention` records; unreadable lines are skipped with a warning.
 */
export function loadStreamFile(log: StreamLog, retention: number, logger: Logger): void {
  if (log.file === undefined || !existsSync(log.file)) return;
  const text = readFileSync(log.file, 'utf8');
  const lines = text.split('\n');
  const loadedAt = Date.now();
  let skipped = 0;
  for (const line of lines) {
    if (line === '') continue;
    let parsed: z.infer<typeof streamLineSchema>;
    try {
      const result = streamLineSchema.safeParse(JSON.parse(line));
      if (!result.success) throw new Error('bad line');
      parsed = result.data;
    } catch {
      skipped++;
      continue;
    }
    if (log.records.length === 0) log.base = parsed.offset;
    const expected = log.base + log.records.length;
    if (parsed.offset < expected) continue;
    // A gap (lines lost) keeps offsets truthful: the stream restarts at the later offset.
    if (parsed.offset > expected) {
      log.records = [];
      log.base = parsed.offset;
    }
    const record: StoredRecord = { data: parsed.data, ts: parsed.ts ?? loadedAt, bytes: 0 };
    record.bytes = Buffer.byteLength(recordLine(parsed.offset, record));
    log.records.push(record);
  }
  log.bytes = log.records.reduce((n, r) => n + r.bytes, 0);
  log.fileLines = lines.length;
  log.fileBytes = Buffer.byteLength(text);
  if (log.records.length > retention) {
    const drop = log.records.length - retention;
    log.bytes -= log.records.slice(0, drop).reduce((n, r) => n + r.bytes, 0);
    log.records.splice(0, drop);
    log.base += drop;
  }
  if (skipped > 0)
    logger.warn({ file: log.file, skipped }, 'skipped unreadable lines in persisted broker stream');
}

/** Saves named consumers' offsets atomically (write then rename); logs on failure. */
export function saveOffsetsFile(file: string, offsets: Map<string, number>, logger: Logger): void {
  try {
    writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(offsets), null, 1), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  } catch (err) {
    logger.error({ err, file }, 'could not save broker consumer offsets; check DATA_DIR is writable');
  }
}

/** Loads named consumers' offsets into `offsets`; an unreadable file is logged and ignored. */
export function loadOffsetsFile(file: string, offsets: Map<string, number>, logger: Logger): void {
  if (!existsSync(file)) return;
  try {
    const parsed = offsetsFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success) throw new Error(parsed.error.message);
    for (const [k, v] of Object.entries(parsed.data)) offsets.set(k, v);
  } catch (err) {
    logger.error(
      { err, file },
      'ignoring unreadable broker offsets file; named consumers start from their `from` position',
    );
  }
}
