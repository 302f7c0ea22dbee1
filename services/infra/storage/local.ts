import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PlatformError } from '../../../core/errors.js';
import type { Health } from '../health.js';
import { Sha256PassThrough, toReadable, verifyingStream } from './hashing.js';
import { assertValidKey, assertValidPrefix } from './keys.js';
import type { ObjectInfo, PutResult, Storage } from './port.js';

// Stored images, models and datasets are the project's data: readable by the server's own user only.
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/** Options of the local-folder storage adapter. */
export interface LocalStorageOptions {
  /** Folder that holds `objects/`, `meta/` and `tmp/`. */
  root: string;
  /**
   * Public base URL of the platform's HTTP server, e.g. `http://127.0.0.1:8080`; signed URLs point at
   * `${baseUrl}/storage/<key>`. A function is asked at every signing (the URL a serving process advertised).
   */
  baseUrl: string | (() => string | Promise<string>);
  /** HMAC key for signed URLs (at least 16 characters). */
  secret: string;
  /** Largest object a signed PUT may upload; default 5 GiB. */
  maxUploadBytes?: number;
}

/** What a valid signed URL allows. */
export interface SignedUrlGrant {
  op: 'get' | 'put';
  key: string;
  contentType?: string;
  /** Largest body a signed PUT accepts (below the adapter's `maxUploadBytes`). */
  maxBytes?: number;
}

interface MetaRecord {
  key: string;
  size: number;
  sha256: string;
  contentType?: string;
  updatedAt: number;
}

/** The embedded storage adapter: objects are files under `root/objects`, sha256 and content type sit in a sidecar store under `root/meta`. */
export class LocalStorage implements Storage {
  readonly adapter = 'local' as const;
  /** Largest object a signed PUT may upload. */
  readonly maxUploadBytes: number;
  private readonly objectsDir: string;
  private readonly metaDir: string;
  private readonly tmpDir: string;
  private readonly baseUrl: () => string | Promise<string>;
  private readonly secret: string;
  private ready: Promise<void> | undefined;
  private readonly commits = new Map<string, Promise<unknown>>();

  constructor(opts: LocalStorageOptions) {
    if (opts.secret.length < 16)
      throw new PlatformError(
        'invalid_input',
        'storage signing secret must be at least 16 characters; set SIGNING_SECRET',
      );
    const root = path.resolve(opts.root);
    this.objectsDir = path.join(root, 'objects');
    this.metaDir = path.join(root, 'meta');
    this.tmpDir = path.join(root, 'tmp');
    const base = opts.baseUrl;
    this.baseUrl = typeof base === 'string' ? () => base : base;
    this.secret = opts.secret;
    this.maxUploadBytes = opts.maxUploadBytes ?? 5 * 1024 ** 3;
  }

  async put(
    key: string,
    body: Buffer | Uint8Array | Readable,
    opts: { contentType?: string; maxBytes?: number } = {},
  ): Promise<PutResult> {
    assertValidKey(key);
    await this.init();
    const target = this.objectPath(key);
    const tmp = path.join(this.tmpDir, `${randomBytes(12).toString('hex')}.part`);
    const hasher = new Sha256PassThrough(opts.maxBytes);
    const out = createWriteStream(tmp, { flags: 'wx', mode: FILE_MODE });
    try {
      await pipeline(toReadable(body), hasher, out);
      const record: MetaRecord = {
        key,
        size: hasher.bytesSeen,
        sha256: hasher.digest(),
        updatedAt: Date.now(),
      };
      if (opts.contentType) record.contentType = opts.contentType;
      const metaFile = this.metaPath(key);
      const metaTmp = `${tmp}.meta`;
      await writeFile(metaTmp, JSON.stringify(record), { flag: 'wx', mode: FILE_MODE });
      await this.serialized(key, async () => {
        await mkdir(path.dirname(target), { recursive: true, mode: DIR_MODE }).catch((err: unknown) => {
          throw this.layoutConflict(key, err);
        });
        await mkdir(path.dirname(metaFile), { recursive: true, mode: DIR_MODE });
        await rename(tmp, target).catch((err: unknown) => {
          throw this.layoutConflict(key, err);
        });
        await rename(metaTmp, metaFile);
      });
      return { key, size: record.size, sha256: record.sha256 };
    } catch (err) {
      // A failed pipeline destroys the file stream, whose open may still complete afterwards and create
      // the file: wait for the stream to close before removing it, or a partial upload would stay behind.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await rm(tmp, { force: true });
      await rm(`${tmp}.meta`, { force: true });
      throw err;
    }
  }

  async get(key: string, opts: { verify?: boolean } = {}): Promise<Readable> {
    assertValidKey(key);
    await this.statObject(key);
    const meta = opts.verify ? await this.readMeta(key) : undefined;
    const stream = createReadStream(this.objectPath(key));
    return opts.verify ? verifyingStream(stream, key, meta?.sha256) : stream;
  }

  async getBuffer(key: string): Promise<Buffer> {
    assertValidKey(key);
    await this.statObject(key);
    return readFile(this.objectPath(key));
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    const st = await stat(this.objectPath(key)).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    return this.info(key, st.size, st.mtimeMs);
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertValidPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const startDir = slash < 0 ? '' : prefix.slice(0, slash);
    const out: ObjectInfo[] = [];
    const walk = async (relDir: string): Promise<void> => {
      const entries = await readdir(path.join(this.objectsDir, relDir), { withFileTypes: true }).catch(
        () => [],
      );
      for (const entry of entries) {
        const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (rel.startsWith(prefix) || prefix.startsWith(`${rel}/`)) await walk(rel);
        } else if (entry.isFile() && rel.startsWith(prefix)) {
          const st = await stat(path.join(this.objectsDir, rel)).catch(() => undefined);
          if (st) out.push(await this.info(rel, st.size, st.mtimeMs));
        }
      }
    };
    await walk(startDir);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    await this.serialized(key, async () => {
      await rm(this.objectPath(key), { force: true });
      await rm(this.metaPath(key), { force: true });
    });
  }

  async presignGet(key: string, expiresInSeconds: number): Promise<string> {
    return this.sign('get', key, expiresInSeconds, undefined, await this.baseUrl());
  }

  async presignPut(
    key: string,
    expiresInSeconds: number,
    opts: { contentType?: string; maxBytes?: number } = {},
  ): Promise<string> {
    if (opts.maxBytes !== undefined && !(Number.isSafeInteger(opts.maxBytes) && opts.maxBytes > 0)) {
      throw new PlatformError(
        'invalid_input',
        `maxBytes of a presigned PUT must be a positive whole number of bytes, got ${opts.maxBytes}`,
      );
    }
    return this.sign('put', key, expiresInSeconds, opts.contentType, await this.baseUrl(), opts.maxBytes);
  }

  /** Checks the parts of a signed URL (key decoded, query values as received); returns the grant or throws `forbidden`. */
  verifySignedUrl(
    params: {
      op: string | undefined;
      key: string;
      exp: string | undefined;
      sig: string | undefined;
      ct?: string | undefined;
      max?: string | undefined;
    },
    nowMs = Date.now(),
  ): SignedUrlGrant {
    const { op, key, exp, sig, ct, max } = params;
    if ((op !== 'get' && op !== 'put') || !exp || !sig) {
      throw new PlatformError(
        'forbidden',
        'storage URL is not signed (needs op, exp and sig query parameters); ask the platform for a presigned URL',
      );
    }
    assertValidKey(key);
    const expected = this.signature(op, key, exp, ct, max);
    const given = Buffer.from(sig, 'utf8');
    const want = Buffer.from(expected, 'utf8');
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      throw new PlatformError(
        'forbidden',
        `storage URL signature does not match for "${key}" (${op}); the URL was altered or signed by another server`,
      );
    }
    const expSeconds = Number(exp);
    if (!Number.isFinite(expSeconds) || expSeconds * 1000 < nowMs) {
      throw new PlatformError(
        'forbidden',
        `storage URL for "${key}" expired at ${new Date(expSeconds * 1000).toISOString()}; ask for a new one`,
      );
    }
    return { op, key, ...(ct ? { contentType: ct } : {}), ...(max ? { maxBytes: Number(max) } : {}) };
  }

  async health(): Promise<Health> {
    try {
      await this.init();
      return { port: 'storage', adapter: 'local', ok: true };
    } catch (err) {
      return {
        port: 'storage',
        adapter: 'local',
        ok: false,
        detail: `cannot write storage folder (DATA_DIR): ${(err as Error).message}`,
      };
    }
  }

  async close(): Promise<void> {}

  private sign(
    op: 'get' | 'put',
    key: string,
    expiresInSeconds: number,
    contentType: string | undefined,
    baseUrl: string,
    maxBytes?: number,
  ): string {
    assertValidKey(key);
    if (!(expiresInSeconds > 0))
      throw new PlatformError(
        'invalid_input',
        `presigned URL lifetime must be positive seconds, got ${expiresInSeconds}`,
      );
    const exp = String(Math.floor(Date.now() / 1000) + Math.ceil(expiresInSeconds));
    const query = new URLSearchParams({ op, exp });
    if (contentType) query.set('ct', contentType);
    const max = maxBytes === undefined ? undefined : String(maxBytes);
    if (max) query.set('max', max);
    query.set('sig', this.signature(op, key, exp, contentType, max));
    const encodedKey = key.split('/').map(encodeURIComponent).join('/');
    return `${baseUrl.replace(/\/+$/, '')}/storage/${encodedKey}?${query.toString()}`;
  }

  private signature(
    op: string,
    key: string,
    exp: string,
    contentType: string | undefined,
    max?: string,
  ): string {
    // the size cap is signed too (appended only when present, so URLs without one keep their signature)
    const capped = max ? `\n${max}` : '';
    return createHmac('sha256', this.secret)
      .update(`${op}\n${key}\n${exp}\n${contentType ?? ''}${capped}`)
      .digest('base64url');
  }

  // Concurrent puts of one key in this process commit one after the other, so bytes and sidecar always match.
  private serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.commits.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.commits.set(key, settled);
    void settled.then(() => {
      if (this.commits.get(key) === settled) this.commits.delete(key);
    });
    return run;
  }

  private init(): Promise<void> {
    this.ready ??= Promise.all(
      [this.objectsDir, this.metaDir, this.tmpDir].map((d) => mkdir(d, { recursive: true, mode: DIR_MODE })),
    ).then(() => undefined);
    return this.ready;
  }

  private objectPath(key: string): string {
    return path.join(this.objectsDir, ...key.split('/'));
  }

  // Named by the key's hash so no key can collide with another key's metadata or with an object.
  private metaPath(key: string): string {
    const h = createHash('sha256').update(key).digest('hex');
    return path.join(this.metaDir, h.slice(0, 2), `${h}.json`);
  }

  private async readMeta(key: string): Promise<MetaRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(this.metaPath(key), 'utf8')) as MetaRecord;
      return record.key === key ? record : undefined;
    } catch {
      return undefined;
    }
  }

  private async statObject(key: string): Promise<void> {
    const st = await stat(this.objectPath(key)).catch(() => undefined);
    if (!st?.isFile())
      throw new PlatformError(
        'not_found',
        `object "${key}" not found in storage; check the key or list the prefix`,
      );
  }

  private async info(key: string, size: number, mtimeMs: number): Promise<ObjectInfo> {
    const meta = await this.readMeta(key);
    const info: ObjectInfo = { key, size, updatedAt: Math.floor(meta?.updatedAt ?? mtimeMs) };
    if (meta && meta.size === size) info.sha256 = meta.sha256;
    if (meta?.contentType) info.contentType = meta.contentType;
    return info;
  }

  private layoutConflict(key: string, err: unknown): unknown {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST') {
      return new PlatformError(
        'conflict',
        `storage key "${key}" clashes with an existing object or folder in the local store (a key cannot be both "a" and a prefix "a/"); choose another key`,
      );
    }
    return err;
  }
}
