import type { Storage } from './port.js';
import type { S3StorageOptions } from './s3.js';
import type { LocalStorageOptions } from './local.js';

export type { ObjectInfo, PutResult, Storage } from './port.js';
export type { S3StorageOptions } from './s3.js';
export type { LocalStorageOptions, SignedUrlGrant } from './local.js';
export { LocalStorage } from './local.js';
export { localStorageRouter } from './local-http.js';
export { assertValidKey } from './keys.js';

/** Builds the configured storage: S3 when `s3` is given (the AWS SDK is loaded only then), the local folder otherwise. */
export async function createStorage(opts: {
  s3?: S3StorageOptions;
  localRoot: string;
  baseUrl: LocalStorageOptions['baseUrl'];
  secret: string;
}): Promise<Storage> {
  if (opts.s3) {
    const { S3Storage } = await import('./s3.js');
    return new S3Storage(opts.s3);
  }
  const { LocalStorage } = await import('./local.js');
  return new LocalStorage({ root: opts.localRoot, baseUrl: opts.baseUrl, secret: opts.secret });
}
