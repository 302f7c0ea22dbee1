import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { OUTPUT_LAYOUTS } from '../services/infra/broker/index.js';
import { PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

/** A model this device switched to, as recorded in its state file. */
export const modelRecordSchema = z.object({
  deploymentId: z.string(),
  rolloutId: z.string(),
  versionId: z.string(),
  name: z.string(),
  version: z.number().int(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  layout: z.enum(OUTPUT_LAYOUTS),
  inputSize: z.number().int().positive(),
  classNames: z.array(z.string()),
  /** File name under `models/`. */
  file: z.string(),
  activatedAt: z.number().int(),
});
export type ModelRecord = z.infer<typeof modelRecordSchema>;

const outcomeSchema = z.object({
  /** `deploy:<deploymentId>` or `rollback:<deploymentId>`. */
  key: z.string(),
  state: z.enum(['healthy', 'failed', 'rolled_back']),
  modelVersionId: z.string(),
  rolloutId: z.string(),
  message: z.string().optional(),
  at: z.number().int(),
});
/** The recorded result of one deploy or rollback command, replayed when the command arrives again. */
export type CommandOutcome = z.infer<typeof outcomeSchema>;

const stateSchema = z.object({
  version: z.literal(1),
  current: modelRecordSchema.nullable(),
  previous: modelRecordSchema.nullable(),
  outcomes: z.array(outcomeSchema),
  /** Seconds the last TensorRT engine build took, to estimate progress of the next one. */
  lastBuildSeconds: z.number().nonnegative().optional(),
  /** A deploy command being applied; resumed after a restart so it is never lost. */
  pending: z.unknown().optional(),
});
/** Everything a device must remember across restarts. */
export type DeviceState = z.infer<typeof stateSchema>;

const MAX_OUTCOMES = 1000;

/**
 * The device's on-disk memory: `state.json` (current and previous model, outcomes of every
 * command it handled) written atomically, and the model files under `models/` (the current and
 * the previous one are kept; older ones are deleted after a switch).
 */
export class ModelStore {
  readonly modelsDir: string;
  private readonly stateFile: string;
  private readonly tmpDir: string;
  private state: DeviceState = { version: 1, current: null, previous: null, outcomes: [] };
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataDir: string,
    private readonly log?: Logger,
  ) {
    this.modelsDir = path.join(dataDir, 'models');
    this.stateFile = path.join(dataDir, 'state.json');
    this.tmpDir = path.join(dataDir, 'tmp');
  }

  /** Reads `state.json` (a missing or unreadable file means a fresh device) and clears leftover temp files. */
  async load(): Promise<DeviceState> {
    await mkdir(this.modelsDir, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    let text: string | undefined;
    try {
      text = await readFile(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      try {
        this.state = stateSchema.parse(JSON.parse(text));
      } catch (err) {
        this.log?.error(
          { err: (err as Error).message, file: this.stateFile },
          'device state file is unreadable; starting without a model',
        );
      }
    }
    return this.snapshot();
  }

  snapshot(): DeviceState {
    return structuredClone(this.state);
  }

  get current(): ModelRecord | null {
    return this.state.current;
  }

  get previous(): ModelRecord | null {
    return this.state.previous;
  }

  get lastBuildSeconds(): number | undefined {
    return this.state.lastBuildSeconds;
  }

  /** The recorded outcome of a command key, if it was handled before. */
  outcome(key: string): CommandOutcome | undefined {
    return this.state.outcomes.find((o) => o.key === key);
  }

  modelPath(record: Pick<ModelRecord, 'file'>): string {
    return path.join(this.modelsDir, record.file);
  }

  /** Records a switch to `next` (the current one becomes previous) together with the command outcome, in one atomic write. */
  async activate(next: ModelRecord, outcome: CommandOutcome): Promise<void> {
    const prev = this.state.current;
    this.state.previous = prev && prev.versionId !== next.versionId ? prev : this.state.previous;
    this.state.current = next;
    this.pushOutcome(outcome);
    await this.persist();
    await this.prune();
  }

  /** Records a rollback: `restored` (the previous model, or null) becomes current and nothing is kept as previous. */
  async rollBack(restored: ModelRecord | null, outcome: CommandOutcome): Promise<void> {
    this.state.current = restored;
    this.state.previous = null;
    this.pushOutcome(outcome);
    await this.persist();
  }

  /** Records a command outcome without changing models (failed deploys, rollbacks with nothing to undo). */
  async record(outcome: CommandOutcome): Promise<void> {
    this.pushOutcome(outcome);
    await this.persist();
  }

  /** The deploy command that was being applied when the process stopped, if any. */
  get pending(): unknown {
    return this.state.pending;
  }

  /** Remembers the command being applied (or clears it with undefined). */
  async setPending(command: unknown): Promise<void> {
    if (command === undefined) delete this.state.pending;
    else this.state.pending = command;
    await this.persist();
  }

  async setLastBuildSeconds(seconds: number): Promise<void> {
    this.state.lastBuildSeconds = seconds;
    await this.persist();
  }

  /**
   * Streams `url` into a temp file while hashing it; returns the temp path, or throws when the
   * download fails or the size or sha256 differ from what was announced.
   */
  async download(
    url: string,
    expect: { sha256: string; size: number },
    opts: { onProgress?: (bytes: number) => void; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ tmpPath: string; sha256: string; size: number }> {
    await mkdir(this.tmpDir, { recursive: true });
    const tmpPath = path.join(this.tmpDir, `${randomBytes(8).toString('hex')}.part`);
    const signal = AbortSignal.any([
      ...(opts.signal ? [opts.signal] : []),
      AbortSignal.timeout(opts.timeoutMs ?? 10 * 60_000),
    ]);
    let res: Response;
    try {
      res = await fetch(url, { signal });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      let where = '(invalid URL)';
      try {
        where = `${new URL(url).origin}${new URL(url).pathname}`;
      } catch {
        // keep the placeholder: the signature part of the URL is never shown
      }
      throw new PlatformError(
        'unavailable',
        `model download failed: cannot reach ${where} (${cause?.code ?? cause?.message ?? (err as Error).message}); this device must reach the platform's storage there — set PUBLIC_URL on the platform (every serve, MCP and CLI process) to an address the device reaches`,
      );
    }
    if (!res.ok || !res.body) {
      const text = (await res.text().catch(() => '')).slice(0, 300);
      throw new PlatformError(
        res.status === 403 ? 'forbidden' : 'unavailable',
        `model download failed with HTTP ${res.status}${text ? `: ${text}` : ''}; the signed URL may have expired, start the rollout again`,
      );
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        if (bytes > expect.size) {
          cb(
            new PlatformError(
              'invalid_input',
              `model download is larger than the announced ${expect.size} bytes; the artifact does not match its registry entry`,
            ),
          );
          return;
        }
        opts.onProgress?.(bytes);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>),
        meter,
        createWriteStream(tmpPath),
        { signal },
      );
    } catch (err) {
      await rm(tmpPath, { force: true });
      if (err instanceof PlatformError) throw err;
      throw new PlatformError(
        'unavailable',
        `model download interrupted after ${bytes} bytes: ${(err as Error).message}; the device will report failed and keep its model`,
      );
    }
    return { tmpPath, sha256: hash.digest('hex'), size: bytes };
  }

  /** Moves a verified download into `models/<sha256>.onnx` and returns the file name. */
  async install(tmpPath: string, sha256: string): Promise<string> {
    const file = `${sha256}.onnx`;
    await rename(tmpPath, path.join(this.modelsDir, file));
    return file;
  }

  /** Deletes a temp download. */
  async discard(tmpPath: string): Promise<void> {
    await rm(tmpPath, { force: true });
  }

  /** Deletes model files other than the current and previous ones. */
  async prune(): Promise<void> {
    const keep = new Set(
      [this.state.current?.file, this.state.previous?.file].filter((f): f is string => f !== undefined),
    );
    for (const f of await readdir(this.modelsDir)) {
      if (!keep.has(f) && f.endsWith('.onnx')) await rm(path.join(this.modelsDir, f), { force: true });
    }
  }

  private pushOutcome(outcome: CommandOutcome): void {
    delete this.state.pending;
    this.state.outcomes = [...this.state.outcomes.filter((o) => o.key !== outcome.key), outcome].slice(
      -MAX_OUTCOMES,
    );
  }

  /** Writes state.json atomically: temp file, fsync, rename, so a crash leaves the old or the new state, never half. */
  private persist(): Promise<void> {
    const text = JSON.stringify(this.state, null, 1);
    const write = this.writes.then(async () => {
      const tmp = `${this.stateFile}.${randomBytes(4).toString('hex')}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.stateFile);
    });
    this.writes = write.catch(() => undefined);
    return write;
  }
}
