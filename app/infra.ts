import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../core/log.js';
import { createIdentityProvider } from '../services/infra/auth/index.js';
import type { IdentityProvider } from '../services/infra/auth/port.js';
import { createBroker, type Broker } from '../services/infra/broker/index.js';
import type { RetentionGap } from '../services/infra/broker/port.js';
import { createCache, type Cache } from '../services/infra/cache/index.js';
import { createDb, type Db } from '../services/infra/db/index.js';
import { createSearchIndex, type SearchIndex } from '../services/infra/search/index.js';
import { createStorage, type Storage } from '../services/infra/storage/index.js';
import { PublicUrl } from '../services/public-url.js';
import type { Config } from './config.js';

/** Every adapter of the platform, built once from the validated config. */
export interface Infra {
  db: Db;
  cache: Cache;
  search: SearchIndex;
  broker: Broker;
  storage: Storage;
  identity: IdentityProvider;
}

/** The adapters, and what they were built with that the services need too. */
export interface BuiltInfra {
  infra: Infra;
  /** `DATA_DIR`, resolved and owner-only. */
  dataDir: string;
  publicUrl: string;
  publicUrls: PublicUrl;
  signingSecret: string;
  /** Handlers told when a named consumer's stored offset fell behind retention (filled by the platform). */
  onRetentionGap: Array<(gap: RetentionGap) => void>;
}

/** Builds every adapter from `config`: the only place that picks an adapter by configuration. */
export async function createInfra(config: Config, log: Logger): Promise<BuiltInfra> {
  const dataDir = path.resolve(config.DATA_DIR);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // the database, storage, broker logs and keys live here: owner-only, also when the folder already existed
  try {
    chmodSync(dataDir, 0o700);
  } catch (err) {
    log.warn(
      { err: (err as Error).message, dataDir },
      'could not make DATA_DIR owner-only (0700); restrict it yourself',
    );
  }
  const publicUrl = (config.PUBLIC_URL ?? `http://${displayHost(config.HOST)}:${config.PORT}`).replace(
    /\/$/,
    '',
  );
  const signingSecret = config.SIGNING_SECRET ?? loadOrCreateSecret(path.join(dataDir, 'signing-secret'));

  const db = await createDb({ url: config.DATABASE_URL, sqliteFile: path.join(dataDir, 'visioninapp.db') });
  const publicUrls = new PublicUrl({
    db,
    log,
    fallback: publicUrl,
    ...(config.PUBLIC_URL === undefined ? {} : { configured: config.PUBLIC_URL }),
  });
  const cache = await createCache({ redisUrl: config.REDIS_URL, keyPrefix: 'via:', log });
  const search = await createSearchIndex({
    elasticsearchUrl: config.ELASTICSEARCH_URL,
    indexPrefix: config.ELASTICSEARCH_INDEX_PREFIX,
  });
  // the broker is built before the services that reconcile a retention gap: they subscribe below
  const onRetentionGap: Array<(gap: RetentionGap) => void> = [];
  const broker = await createBroker({
    rabbitmqUrl: config.RABBITMQ_STREAM_URL,
    dataDir: path.join(dataDir, 'broker'),
    log,
    ...(config.RABBITMQ_STREAM_PREFIX === undefined ? {} : { streamPrefix: config.RABBITMQ_STREAM_PREFIX }),
    bounds: {
      maxAge: config.RABBITMQ_STREAM_MAX_AGE,
      maxBytes: config.RABBITMQ_STREAM_MAX_BYTES,
      maxSegmentSizeBytes: config.RABBITMQ_STREAM_MAX_SEGMENT_SIZE_BYTES,
    },
    onRetentionGap: (gap) => onRetentionGap.forEach((handle) => handle(gap)),
  });
  const storage = await createStorage({
    ...(config.S3_BUCKET === undefined
      ? {}
      : {
          s3: {
            bucket: config.S3_BUCKET,
            region: config.S3_REGION,
            forcePathStyle: config.S3_FORCE_PATH_STYLE,
            ...(config.S3_ENDPOINT === undefined ? {} : { endpoint: config.S3_ENDPOINT }),
          },
        }),
    localRoot: path.join(dataDir, 'storage'),
    // signed when work is created, possibly by a process (MCP, CLI) that serves no HTTP itself
    baseUrl: () => publicUrls.current(),
    secret: signingSecret,
  });
  const identity = await createIdentityProvider({
    firebaseProjectId: config.FIREBASE_PROJECT_ID,
    firebaseAuthEmulatorHost: config.FIREBASE_AUTH_EMULATOR_HOST,
    db,
  });
  const infra: Infra = { db, cache, search, broker, storage, identity };
  return { infra, dataDir, publicUrl, publicUrls, signingSecret, onRetentionGap };
}

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/** Reads the embedded signing secret, creating it (mode 0600) on first start. */
function loadOrCreateSecret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
