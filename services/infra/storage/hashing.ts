import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { PlatformError } from '../../../core/errors.js';

/** A pass-through that hashes what flows through it; `digest()` is valid once the stream ended. */
export class Sha256PassThrough extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private hex: string | undefined;

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      cb(
        new PlatformError(
          'invalid_input',
          `upload is larger than the limit of ${this.maxBytes} bytes; split it or raise the limit`,
        ),
      );
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.hex = this.hash.digest('hex');
    cb();
  }

  /** Bytes seen so far. */
  get bytesSeen(): number {
    return this.bytes;
  }

  /** Hex sha256 of everything that passed; throws before the stream has ended. */
  digest(): string {
    if (this.hex === undefined) throw new Error('sha256 requested before the stream ended');
    return this.hex;
  }
}

/** Turns a put body into a Readable. */
export function toReadable(body: Buffer | Uint8Array | Readable): Readable {
  return body instanceof Readable
    ? body
    : Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
}

/** Wraps `source` so the stream errors at its end when its bytes do not hash to `expected`. */
export function verifyingStream(source: Readable, key: string, expected: string | undefined): Readable {
  if (expected === undefined) {
    source.destroy();
    throw new PlatformError(
      'conflict',
      `object "${key}" has no recorded sha256, so it cannot be verified; re-upload it through the storage port or read it without verify`,
    );
  }
  const hash = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const actual = hash.digest('hex');
      if (actual !== expected) {
        cb(
          new PlatformError(
            'internal',
            `object "${key}" is corrupted: its sha256 is ${actual} but ${expected} was recorded at upload; re-upload it`,
            {
              key,
              expected,
              actual,
            },
          ),
        );
      } else cb();
    },
  });
  source.on('error', (err) => check.destroy(err));
  return source.pipe(check);
}
