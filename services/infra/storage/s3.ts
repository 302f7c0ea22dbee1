import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { PlatformError } from '../../../core/errors.js';
import type { Health } from '../health.js';
import { Sha256PassThrough, verifyingStream } from './hashing.js';
import { assertValidKey, assertValidPrefix } from './keys.js';
import type { ObjectInfo, PutResult, Storage } from './port.js';

/** Options of the S3 adapter; credentials come from the standard AWS chain when not given. */
export interface S3StorageOptions {
  bucket: string;
  endpoint?: string;
  region: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Multipart part size in bytes for streamed puts (S3 minimum and default 5 MiB). */
  partSize?: number;
  /** Parts uploaded in parallel; default 4. */
  queueSize?: number;
}

const SHA_META = 'sha256';

/** The S3 storage adapter over @aws-sdk/client-s3; sha256 lives in the object's user metadata (`x-amz-meta-sha256`). */
export class S3Storage implements Storage {
  readonly adapter = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly endpoint: string | undefined;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(opts: S3StorageOptions) {
    this.bucket = opts.bucket;
    this.endpoint = opts.endpoint;
    this.partSize = opts.partSize ?? 5 * 1024 * 1024;
    this.queueSize = opts.queueSize ?? 4;
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Our own sha256 covers integrity; SDK flexible checksums (aws-chunked trailers) break S3-compatible servers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async put(
    key: string,
    body: Buffer | Uint8Array | Readable,
    opts: { contentType?: string } = {},
  ): Promise<PutResult> {
    assertValidKey(key);
    const contentType = opts.contentType ?? 'application/octet-stream';
    try {
      if (!(body instanceof Readable)) {
        const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: bytes,
            ContentType: contentType,
            Metadata: { [SHA_META]: sha256 },
          }),
        );
        return { key, size: bytes.length, sha256 };
      }
      const hasher = new Sha256PassThrough();
      body.on('error', (err) => hasher.destroy(err));
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: key, Body: body.pipe(hasher), ContentType: contentType },
        partSize: this.partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false,
      });
      await upload.done();
      const sha256 = hasher.digest();
      // A stream's hash is known only after the upload, so it is recorded by copying the object onto itself with new metadata.
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
          MetadataDirective: 'REPLACE',
          Metadata: { [SHA_META]: sha256 },
          ContentType: contentType,
        }),
      );
      return { key, size: hasher.bytesSeen, sha256 };
    } catch (err) {
      throw this.mapError(err, key, 'put');
    }
  }

  async get(key: string, opts: { verify?: boolean } = {}): Promise<Readable> {
    assertValidKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const stream = out.Body as Readable;
      return opts.verify ? verifyingStream(stream, key, out.Metadata?.[SHA_META]) : stream;
    } catch (err) {
      throw this.mapError(err, key, 'get');
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    const stream = await this.get(key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const info: ObjectInfo = {
        key,
        size: Number(out.ContentLength ?? 0),
        updatedAt: out.LastModified?.getTime() ?? 0,
      };
      const sha = out.Metadata?.[SHA_META];
      if (sha) info.sha256 = sha;
      if (out.ContentType) info.contentType = out.ContentType;
      return info;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.mapError(err, key, 'head');
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertValidPrefix(prefix);
    const out: ObjectInfo[] = [];
    try {
      for await (const page of paginateListObjectsV2(
        { client: this.client },
        { Bucket: this.bucket, Prefix: prefix },
      )) {
        for (const obj of page.Contents ?? []) {
          if (obj.Key === undefined) continue;
          out.push({
            key: obj.Key,
            size: Number(obj.Size ?? 0),
            updatedAt: obj.LastModified?.getTime() ?? 0,
          });
        }
      }
    } catch (err) {
      throw this.mapError(err, prefix, 'list');
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw this.mapError(err, key, 'delete');
    }
  }

  async presignGet(key: string, expiresInSeconds: number): Promise<string> {
    assertValidKey(key);
    // a download, never a page: an uploaded HTML body must not render (S3 answers with this header)
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ResponseContentDisposition: 'attachment',
    });
    return getSignedUrl(this.client, command, { expiresIn: lifetime(expiresInSeconds) });
  }

  // a presigned PUT cannot cap the size on S3 (a POST policy could): callers check `head(key).size` before using the object
  async presignPut(
    key: string,
    expiresInSeconds: number,
    opts: { contentType?: string; maxBytes?: number } = {},
  ): Promise<string> {
    assertValidKey(key);
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(opts.contentType ? { ContentType: opts.contentType } : {}),
    });
    return getSignedUrl(this.client, command, { expiresIn: lifetime(expiresInSeconds) });
  }

  async health(): Promise<Health> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return { port: 'storage', adapter: 's3', ok: true };
    } catch (err) {
      return { port: 'storage', adapter: 's3', ok: false, detail: `${this.where()}: ${describe(err)}` };
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private where(): string {
    return `bucket "${this.bucket}" (S3_BUCKET) at ${this.endpoint ?? 'the AWS default endpoint'} (S3_ENDPOINT)`;
  }

  private mapError(err: unknown, key: string, op: string): unknown {
    if (err instanceof PlatformError) return err;
    if (isNotFound(err))
      return new PlatformError(
        'not_found',
        `object "${key}" not found in storage; check the key or list the prefix`,
      );
    if (
      err instanceof S3ServiceException &&
      (err.name === 'AccessDenied' || err.$metadata.httpStatusCode === 403)
    ) {
      return new PlatformError(
        'forbidden',
        `S3 refused ${op} of "${key}" in ${this.where()}: ${err.message}; check the credentials`,
      );
    }
    return new PlatformError(
      'unavailable',
      `S3 ${op} of "${key}" failed in ${this.where()}: ${describe(err)}`,
    );
  }
}

function isNotFound(err: unknown): boolean {
  if (err instanceof S3ServiceException)
    return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404;
  return false;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function lifetime(seconds: number): number {
  if (!(seconds > 0))
    throw new PlatformError(
      'invalid_input',
      `presigned URL lifetime must be positive seconds, got ${seconds}`,
    );
  return Math.ceil(seconds);
}
