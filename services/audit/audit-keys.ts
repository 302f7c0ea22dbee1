import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PlatformError } from '../../core/errors.js';

/** One audit HMAC key: `id` is recorded in every entry, head and checkpoint it signs. */
export interface AuditKey {
  id: string;
  secret: string;
}

/**
 * The keys of the audit log: `current` signs new entries, heads and checkpoints; every key in
 * `keys` (the current one included) verifies what carries its id; `legacy` verifies entries written
 * before key ids existed (they carry none).
 */
export interface AuditKeyring {
  current: AuditKey;
  keys: ReadonlyMap<string, string>;
  legacy?: string;
}

/** The id of a key: a short fingerprint, so a rotated key gets a new id without configuring one. */
export function auditKeyId(secret: string): string {
  return `k${createHash('sha256').update(`visioninapp audit key id\0${secret}`).digest('hex').slice(0, 16)}`;
}

/** A keyring of `current` plus `retired` keys (kept to verify what they signed). */
export function createAuditKeyring(
  current: string,
  retired: readonly string[] = [],
  legacy?: string,
): AuditKeyring {
  const keys = new Map<string, string>();
  for (const secret of [...retired, current]) keys.set(auditKeyId(secret), secret);
  return {
    current: { id: auditKeyId(current), secret: current },
    keys,
    ...(legacy === undefined ? {} : { legacy }),
  };
}

/** The key audit entries were hashed with before AUDIT_KEY existed: derived from SIGNING_SECRET. */
export function legacyAuditKey(signingSecret: string): string {
  return createHmac('sha256', signingSecret).update('visioninapp audit chain').digest('hex');
}

/**
 * The platform's audit keyring. The current key is `auditKey` (AUDIT_KEY) or, when unset, a random
 * key generated once into `DATA_DIR/audit-key` (0600). The key entries of earlier versions were
 * hashed with (derived from SIGNING_SECRET) is pinned once into `DATA_DIR/audit-key-legacy` (0600),
 * so rotating SIGNING_SECRET afterwards leaves those entries verifiable.
 */
export function loadAuditKeyring(opts: {
  dataDir: string;
  signingSecret: string;
  auditKey?: string | undefined;
  retiredKeys?: readonly string[] | undefined;
}): AuditKeyring {
  const current =
    opts.auditKey ??
    loadOrCreate(path.join(opts.dataDir, 'audit-key'), () => randomBytes(32).toString('base64url'));
  const legacy = loadOrCreate(path.join(opts.dataDir, 'audit-key-legacy'), () =>
    legacyAuditKey(opts.signingSecret),
  );
  return createAuditKeyring(current, opts.retiredKeys ?? [], legacy);
}

function loadOrCreate(file: string, make: () => string): string {
  if (existsSync(file)) {
    const value = readFileSync(file, 'utf8').trim();
    if (value.length < 32)
      throw new PlatformError(
        'invalid_input',
        `${file} holds no audit key (under 32 characters); restore it from a backup or set AUDIT_KEY`,
      );
    return value;
  }
  const value = make();
  // 'wx': never overwrite a key another process created a moment ago
  try {
    writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreate(file, make);
    throw err;
  }
  return value;
}
