import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { AccountService, ChatLinkService } from '../services/accounts/index.js';
import { ApprovalService } from '../services/approvals/index.js';
import { AuditLog, loadAuditKeyring } from '../services/audit/index.js';
import { DatasetService, DatasetUploads } from '../services/datasets/index.js';
import { datasetPathPolicy, defaultDataFolders, parseRoots } from '../services/datasets/roots.js';
import { FeedbackService } from '../services/feedback/index.js';
import { FleetService, RolloutController, RolloutService } from '../services/fleet/index.js';
import type { ReadCache } from '../services/infra/cache/index.js';
import { ModelEvaluationService, ModelRegistry, ModelTryout } from '../services/models/index.js';
import { TrainingService } from '../services/training/index.js';
import type { Config } from './config.js';
import type { Infra } from './infra.js';

/** What the domain services are built from. */
export interface DomainInputs {
  config: Config;
  log: Logger;
  infra: Infra;
  dataDir: string;
  signingSecret: string;
  // One bus carries every domain's events; each service is typed for (and emits only) its own union.
  events: EventBus<any>;
  reads: ReadCache;
  /** Validates an approval's edited arguments with the tool's input schema. */
  validateArgs: (tool: string, args: unknown) => unknown;
}

/** Every domain service, built once. */
export type Domains = ReturnType<typeof createDomains>;

/** Builds the domain services from the adapters and configuration (part of the composition root). */
export function createDomains(inputs: DomainInputs) {
  const { config, log, infra, dataDir, signingSecret, events, reads, validateArgs } = inputs;
  const { db, cache, broker, storage, identity } = infra;
  // entry hashes are keyed, so someone with write access to the database cannot recompute a rewritten chain
  // its own key (not SIGNING_SECRET), so rotating the signing secret leaves the audit log verifiable
  const audit = new AuditLog({
    db,
    log: log.child({ service: 'audit' }),
    keyring: loadAuditKeyring({
      dataDir,
      signingSecret,
      auditKey: config.AUDIT_KEY,
      retiredKeys: config.AUDIT_KEYS,
    }),
    checkpointEvery: config.AUDIT_CHECKPOINT_EVERY,
    checkpointIntervalMs: config.AUDIT_CHECKPOINT_MINUTES * 60_000,
    anchorFile: path.join(dataDir, 'audit-anchor.json'),
  });
  const accounts = new AccountService({
    db,
    identity,
    log: log.child({ service: 'accounts' }),
    events,
    cache,
    audit,
  });
  const chatLinks = new ChatLinkService({
    db,
    audit,
    log: log.child({ service: 'chat-links' }),
    codeTtlMs: config.CHAT_LINK_CODE_TTL_MIN * 60_000,
  });
  const approvals = new ApprovalService({
    db,
    audit,
    events,
    log: log.child({ service: 'approvals' }),
    strict: config.APPROVAL_STRICT,
    ttlMs: config.APPROVAL_TTL_HOURS * 3_600_000,
    reads,
    validateArgs,
  });
  // server paths: imports read only under IMPORT_ROOTS (+ the demo folder), exports write only under EXPORT_ROOTS
  for (const dir of Object.values(defaultDataFolders(dataDir)))
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  const datasetPaths = datasetPathPolicy({
    dataDir,
    importRoots: parseRoots(config.IMPORT_ROOTS),
    exportRoots: parseRoots(config.EXPORT_ROOTS),
  });
  const datasets = new DatasetService({
    db,
    storage,
    events,
    log: log.child({ service: 'datasets' }),
    paths: datasetPaths,
  });
  const uploads = new DatasetUploads({ dir: path.join(dataDir, 'uploads'), storage });

  const models = new ModelRegistry({ db, events, log: log.child({ service: 'models' }) });
  const evaluations = new ModelEvaluationService({
    db,
    storage,
    models,
    datasets,
    events,
    log: log.child({ service: 'evaluations' }),
  });
  const tryouts = new ModelTryout({ storage, models });
  const training = new TrainingService({
    db,
    broker,
    storage,
    events,
    log: log.child({ service: 'training' }),
    datasets,
    models,
    heartbeatTimeoutMs: config.JOB_HEARTBEAT_TIMEOUT_S * 1000,
    maxAttempts: config.JOB_MAX_ATTEMPTS,
  });
  const fleet = new FleetService({
    db,
    events,
    log: log.child({ service: 'fleet' }),
    onlineWindowMs: config.DEVICE_ONLINE_WINDOW_S * 1000,
  });
  const rollouts = new RolloutService({
    db,
    broker,
    storage,
    models,
    fleet,
    events,
    log: log.child({ service: 'rollouts' }),
    defaultGates: {
      healthTimeoutMs: config.ROLLOUT_HEALTH_TIMEOUT_S * 1000,
      minHeartbeats: config.ROLLOUT_MIN_HEARTBEATS,
      observeMs: config.ROLLOUT_OBSERVE_S * 1000,
      confidenceMargin: config.ROLLOUT_CONFIDENCE_MARGIN,
    },
  });
  const rolloutController = new RolloutController({
    rollouts,
    broker,
    cache,
    events,
    log: log.child({ service: 'rollout-controller' }),
  });
  const feedback = new FeedbackService({
    db,
    storage,
    datasets,
    models,
    events,
    log: log.child({ service: 'feedback' }),
    projectOf: (deviceId) => fleet.projectOf(deviceId),
    uploadMaxBytes: config.FEEDBACK_UPLOAD_MAX_BYTES,
  });

  return {
    audit,
    accounts,
    chatLinks,
    approvals,
    datasets,
    uploads,
    models,
    evaluations,
    tryouts,
    training,
    fleet,
    rollouts,
    rolloutController,
    feedback,
  };
}
