import type { Readable } from 'node:stream';
import type { Health } from '../health.js';

/** What a put stored. */
export interface PutResult {
  key: string;
  size: number;
  /** Hex sha256 of the bytes, computed while streaming. */
  sha256: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  sha256?: string;
  contentType?: string;
  updatedAt: number;
}

/** The object storage port: a local folder (embedded) or S3. Keys are `a/b/c.ext`, no leading slash, no `..`. */
export interface Storage {
  readonly adapter: 'local' | 's3';
  /** Streams `body` in (multipart for large objects on S3) and records its sha256. */
  put(key: string, body: Buffer | Uint8Array | Readable, opts?: { contentType?: string }): Promise<PutResult>;
  /** Streams an object out; with `verify` the stream errors at the end when the bytes do not match the recorded sha256. */
  get(key: string, opts?: { verify?: boolean }): Promise<Readable>;
  /** Reads a whole (small) object. */
  getBuffer(key: string): Promise<Buffer>;
  /** Metadata, or undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): Promise<ObjectInfo[]>;
  delete(key: string): Promise<void>;
  /**
   * A URL anyone can GET until it expires; workers and devices never hold storage credentials. The
   * object is served as a download (`Content-Disposition: attachment`, and `nosniff` where the adapter
   * serves it), so an uploaded HTML or SVG body is never rendered from the platform's origin.
   */
  presignGet(key: string, expiresInSeconds: number): Promise<string>;
  /**
   * A URL anyone can PUT the object's bytes to until it expires. `contentType` is bound to the URL;
   * `maxBytes` caps the body where the adapter can enforce it (local: yes; S3: check with `head` after).
   */
  presignPut(
    key: string,
    expiresInSeconds: number,
    opts?: { contentType?: string; maxBytes?: number },
  ): Promise<string>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
