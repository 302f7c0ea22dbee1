import { createHash } from 'node:crypto';
import { isPlatformError, PlatformError } from '../../core/errors.js';
import type { Storage } from '../infra/storage/port.js';
import type { ModelVersion } from './model.js';

/**
 * The version's model.onnx from storage, checked against the sha256 the registry recorded;
 * `purpose` ends the messages ("evaluated", "run").
 */
export async function readModelFile(
  storage: Storage,
  version: ModelVersion,
  purpose: string,
): Promise<Buffer> {
  const key = version.model.key;
  if ((await storage.head(key)) === undefined) {
    throw new PlatformError(
      'not_found',
      `the model file of ${version.ref} (${key}) is missing from storage; the artifact was deleted or storage points elsewhere, so it cannot be ${purpose}`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = await storage.getBuffer(key);
  } catch (err) {
    if (isPlatformError(err)) throw err;
    throw new PlatformError(
      'unavailable',
      `cannot read the model file of ${version.ref} (${key}): ${(err as Error).message}`,
    );
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== version.model.sha256) {
    throw new PlatformError(
      'conflict',
      `sha256 mismatch: the stored model file of ${version.ref} hashes to ${sha256} but the registry recorded ${version.model.sha256}; the artifact is corrupted or was replaced, so it was not ${purpose}`,
      { key, expected: version.model.sha256, actual: sha256 },
    );
  }
  return bytes;
}
