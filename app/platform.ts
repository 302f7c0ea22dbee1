import type { Config } from './config.js';
import { createDomains } from './domains.js';
import { createInfra, type Infra } from './infra.js';
import { every, retry } from '../core/retry.js';
import { EventBus, type DomainEventBase } from '../core/events.js';
import { systemPrincipal } from '../core/context.js';
import { newId } from '../core/ids.js';
import type { Health } from '../services/infra/health.js';
import type { Logger } from '../core/log.js';
import { createMetrics, type PlatformMetrics } from '../core/metrics.js';
import { PublicUrl } from '../services/public-url.js';
import type { Db } from '../services/infra/db/index.js';
import { ReadCache } from '../services/infra/cache/index.js';
import { invalidateReadsOn } from '../services/read-invalidation.js';
import { SearchIndexer } from '../services/infra/search/index.js';
import { AccountService, ChatLinkService, MembershipService } from '../services/accounts/index.js';
import { AuditLog, auditSearchDocs } from '../services/audit/index.js';
import { ApprovalService } from '../services/approvals/index.js';
import { DatasetService, DatasetUploads, datasetSearchDocs } from '../services/datasets/index.js';
import type { SearchDoc } from '../services/infra/search/port.js';
import type { Subscription } from '../services/infra/broker/port.js';
import { InFlightReconciler } from '../services/reconcile.js';
import {
  ModelEvaluationService,
  ModelRegistry,
  ModelTryout,
  modelSearchDocs,
} from '../services/models/index.js';
import { TrainingService, trainingLogSearchDocs, trainingSearchDocs } from '../services/training/index.js';
import {
  deviceSearchDocs,
  FleetService,
  RolloutController,
  RolloutService,
} from '../services/fleet/index.js';
import { FeedbackService } from '../services/feedback/index.js';
import { createToolRegistry, type ToolRegistry, type ToolServices } from '../tools/index.js';
import { settleOrphanedRuns } from '../tools/orphaned-runs.js';
import {
  datasetsReadScope,
  modelsReadScope,
  SEARCH_READ_SCOPE,
  withCachedReads,
  withCachedSearch,
} from '../services/cached-reads.js';
import {
  AgentRuntime,
  proposeRetrain,
  chatModelFromEnv,
  LlmPlanner,
  llmReporter,
  rolloutWaitSource,
  RulesPlanner,
  serviceCatalog,
  trainingWaitSource,
} from '../agent/index.js';

export type { Infra } from './infra.js';

/** The composed platform: adapters, services and the loops that keep them going. */
export interface Platform {
  config: Config;
  log: Logger;
  metrics: PlatformMetrics;
  events: EventBus<DomainEventBase>;
  infra: Infra;
  indexer: SearchIndexer;
  /** Hot reads kept in the cache port, dropped by the domain events that change them. */
  reads: ReadCache;
  accounts: AccountService;
  /** Chat (Slack/Mattermost) identities linked to accounts, confirmed with one-time codes. */
  chatLinks: ChatLinkService;
  audit: AuditLog;
  approvals: ApprovalService;
  datasets: DatasetService;
  /** Browser uploads of datasets, staged under DATA_DIR/uploads until the approved import reads them. */
  uploads: DatasetUploads;
  models: ModelRegistry;
  /** Evaluations of model versions on dataset splits. */
  evaluations: ModelEvaluationService;
  /** Runs a version on one image a person sends (nothing stored). */
  tryouts: ModelTryout;
  training: TrainingService;
  fleet: FleetService;
  rollouts: RolloutService;
  rolloutController: RolloutController;
  feedback: FeedbackService;
  /** The one tool registry (agent, REST, MCP, bot) and the services its tools call. */
  tools: { registry: ToolRegistry; services: ToolServices };
  /** The LangGraph agent: conversations, approvals from any channel, durable waits. */
  agent: AgentRuntime;
  /** The secret that signs local storage URLs and other platform-issued tokens. */
  signingSecret: string;
  /** URL people and devices use to reach this server. */
  publicUrl: string;
  /** The base storage URLs are signed with: PUBLIC_URL, else the URL a serving process advertised in the database. */
  publicUrls: PublicUrl;
  /** Rebuilds the search index from the database (`visioninapp reindex`, and at start for the embedded index). */
  reindex(onProgress?: (indexed: number) => void): Promise<number>;
  /** Status of every adapter plus the platform's own start-up (migrations). */
  health(): Promise<Health[]>;
  /** Runs migrations once and creates the default project (for CLI commands; no loops). */
  prepare(): Promise<void>;
  /** Runs migrations (retrying while the database is down) and starts consumers and loops. */
  start(): Promise<void>;
  /** Stops loops, drains consumers and closes adapters. */
  close(): Promise<void>;
}

/** Builds every adapter and service from `config`; the only place that reads config and picks adapters. */
export async function createPlatform(config: Config, log: Logger): Promise<Platform> {
  const { infra, dataDir, publicUrl, publicUrls, signingSecret, onRetentionGap } = await createInfra(
    config,
    log,
  );
  const { db, cache, search, broker, storage, identity } = infra;

  const metrics = createMetrics();
  // One bus carries every domain's events; each service is typed for (and emits only) its own union.
  const events = new EventBus<any>() as EventBus<any> & EventBus<DomainEventBase>;
  // Hot reads (approval lists, …) kept in the cache port; the domain events that change them drop them,
  // on every instance through Redis. Without Redis another process on the same database (an MCP stdio
  // server, the CLI) changes things without this process seeing its events: a short TTL bounds that.
  const reads = new ReadCache({ cache, ttlMs: config.REDIS_URL === undefined ? 2_000 : 60_000 });
  const stopReadInvalidation = invalidateReadsOn(events, reads, log.child({ component: 'read-cache' }));
  const indexer = new SearchIndexer({
    db,
    index: search,
    log: log.child({ component: 'search-indexer' }),
    cache,
    // the embedded index is each process's own: every serve (and MCP/CLI process) reads every change
    ownIndex: config.ELASTICSEARCH_URL === undefined,
    onApplied: () => reads.invalidate(SEARCH_READ_SCOPE),
  });

  // edited arguments are validated by the tool's own input schema (the registry is built below)
  const registryRef: { current?: ToolRegistry } = {};
  const domains = createDomains({
    config,
    log,
    infra,
    dataDir,
    signingSecret,
    events,
    reads,
    validateArgs: (tool, args) =>
      registryRef.current === undefined ? args : registryRef.current.parseInput(tool, args),
  });
  const { audit, accounts, approvals, datasets, uploads, models, evaluations } = domains;
  const { training, fleet, rollouts, rolloutController, feedback } = domains;

  const searchSources: Array<(db: Db) => AsyncIterable<SearchDoc>> = [
    datasetSearchDocs,
    auditSearchDocs,
    modelSearchDocs,
    trainingSearchDocs,
    (d) => trainingLogSearchDocs(d, storage),
    deviceSearchDocs,
  ];
  // the front ends' and tools' hot reads come from the read cache (services/read-invalidation.ts)
  const datasetReads = withCachedReads(datasets, reads, datasetsReadScope, ['list', 'get', 'listVersions']);
  const modelReads = withCachedReads(models, reads, modelsReadScope, ['list', 'get']);
  const toolServices: ToolServices = {
    approvals,
    audit,
    search: withCachedSearch(search, reads),
    datasets: datasetReads,
    training,
    models: modelReads,
    evaluations,
    fleet,
    rollouts,
    feedback,
    retrain: feedback,
    members: new MembershipService({ db, accounts }),
    approvalStrict: config.APPROVAL_STRICT,
  };
  const registry = createToolRegistry();
  registryRef.current = registry;
  const chatModel = await chatModelFromEnv(config);
  const agent = new AgentRuntime({
    db: db.kysely,
    registry,
    services: toolServices,
    planner: chatModel === undefined ? new RulesPlanner() : new LlmPlanner({ model: chatModel, registry }),
    ...(chatModel === undefined ? {} : { reporter: llmReporter(chatModel) }),
    catalog: serviceCatalog(toolServices),
    log: log.child({ component: 'agent' }),
    approvalMode: config.APPROVAL_MODE,
    waitSources: [trainingWaitSource(training, models), rolloutWaitSource(rollouts)],
    domainEvents: [events],
  });

  // Retrain policies only ever propose (an event and a stored proposal); a person approves any training.
  async function evaluateRetrainPolicies(): Promise<void> {
    const projects = await db.kysely.selectFrom('projects').select('id').execute();
    for (const { id } of projects) {
      const ctx = { user: systemPrincipal(), projectId: id, requestId: 'retrain-policies', log };
      await feedback
        .evaluatePolicies(ctx)
        .catch((err: Error) => log.warn({ err: err.message, projectId: id }, 'retrain policy check failed'));
    }
  }

  // Signed checkpoints of the newest audit entries (also copied to DATA_DIR/audit-anchor.json), so a truncated chain is caught.
  async function auditCheckpoint(): Promise<void> {
    await audit
      .checkpoint()
      .catch((err: Error) => log.error({ err: err.message }, 'audit checkpoint failed'));
  }

  const reconciler = new InFlightReconciler({ db, broker, log: log.child({ component: 'reconcile' }) });
  onRetentionGap.push((gap) => {
    metrics.brokerRetentionGaps.inc({ stream: gap.stream, consumer: gap.consumer });
    reconciler.onGap(gap);
  });
  const subscriptions: Subscription[] = [];
  const stoppers: Array<() => void> = [];
  async function* allSearchDocs(): AsyncIterable<SearchDoc> {
    for (const source of searchSources) yield* source(db);
  }

  let migrated: Health = { port: 'migrations', adapter: db.dialect, ok: false, detail: 'not started' };
  let stopping = false;
  const stopSignal = new AbortController();

  const platform: Platform = {
    config,
    log,
    metrics,
    events,
    infra,
    indexer,
    reads,
    ...domains,
    datasets: datasetReads,
    models: modelReads,
    tools: { registry, services: toolServices },
    agent,
    signingSecret,
    publicUrl,
    publicUrls,
    reindex(onProgress) {
      return indexer.reindex(allSearchDocs, onProgress ? { onProgress } : {});
    },
    async health() {
      const checks = await Promise.all(
        Object.values(infra).map((adapter) =>
          adapter.health().catch((err: Error): Health => ({
            port: 'unknown',
            adapter: 'unknown',
            ok: false,
            detail: err.message,
          })),
        ),
      );
      for (const c of checks) metrics.adapterUp.set({ port: c.port, adapter: c.adapter }, c.ok ? 1 : 0);
      return [...checks, migrated];
    },
    async prepare() {
      await db.migrate();
      migrated = { port: 'migrations', adapter: db.dialect, ok: true };
      await accounts.ensureDefaultProject();
    },
    async start() {
      // the database may still be starting (a compose stack): wait for it, 2 s doubling to 30 s, until stopped
      await retry(
        async () => {
          try {
            const applied = await db.migrate();
            if (applied.length > 0) log.info({ applied }, 'database migrations applied');
            migrated = { port: 'migrations', adapter: db.dialect, ok: true };
          } catch (err) {
            const detail = `${(err as Error).message}${config.DATABASE_URL ? ' (check DATABASE_URL)' : ''}`;
            migrated = { port: 'migrations', adapter: db.dialect, ok: false, detail };
            throw new Error(detail);
          }
        },
        {
          retries: Infinity,
          minTimeout: 2000,
          maxTimeout: 30_000,
          randomize: false,
          signal: stopSignal.signal,
          onRetry: (err, attempt) => log.error({ attempt }, `database not ready: ${(err as Error).message}`),
        },
      ).catch((err: unknown) => {
        if (!stopping) throw err;
      });
      if (stopping) return;
      await publicUrls
        .publish()
        .catch((err: Error) =>
          log.warn({ err: err.message }, 'could not record the public URL in the database'),
        );
      await accounts.ensureDefaultProject();
      if (config.DATABASE_URL !== undefined && config.AUDIT_KEY === undefined)
        log.warn(
          "AUDIT_KEY is not set: the audit key lives in DATA_DIR/audit-key; set AUDIT_KEY (the same on every instance) when instances share DATABASE_URL, or they cannot verify each other's audit entries",
        );
      // the embedded index lives in memory: rebuild it from the database at every start
      if (config.ELASTICSEARCH_URL === undefined) await platform.reindex();
      indexer.start();
      // every committed write notifies the indexer through its domain event, so search follows promptly
      stoppers.push(events.on(() => indexer.notify()));
      subscriptions.push(await training.startConsumers());
      subscriptions.push(await fleet.startConsumers(broker));
      subscriptions.push(await feedback.startConsumers(broker));
      await rolloutController.start();
      stoppers.push(training.startTimeoutChecks());
      stoppers.push(every(60 * 60_000, () => evaluateRetrainPolicies()));
      // a policy that fired becomes one plan in a conversation; each of its steps waits for an approval
      stoppers.push(
        events.on((e) => {
          if (e.type !== 'feedback.retrain_proposed') return;
          const ctx = { user: systemPrincipal(), projectId: e.projectId, requestId: newId('req'), log };
          proposeRetrain(agent, ctx, toolServices, e.proposal).catch((err: Error) =>
            log.warn({ err: err.message, proposal: e.proposal.id }, 'could not start the retrain plan'),
          );
        }),
      );
      stoppers.push(
        every(60 * 60_000, () =>
          uploads.sweep().then(
            () => undefined,
            (err: Error) => log.warn({ err: err.message }, 'could not remove expired dataset uploads'),
          ),
        ),
      );
      stoppers.push(every(config.AUDIT_CHECKPOINT_MINUTES * 60_000, () => auditCheckpoint()));
      // approved calls outside a conversation (REST, MCP) whose process died: nobody retries them
      const sweepLog = log.child({ component: 'orphaned-runs' });
      stoppers.push(
        every(30_000, async () => {
          await settleOrphanedRuns({ registry, services: toolServices }, sweepLog).catch((err: Error) =>
            sweepLog.warn({ err: err.message }, 'could not look for orphaned approved calls'),
          );
        }),
      );
      await agent.start();
    },
    async close() {
      stopping = true;
      stopSignal.abort();
      stoppers.forEach((stop) => stop());
      stopReadInvalidation();
      await agent.stop();
      // the newest entries get a signed checkpoint (and the anchor file) before the database closes
      if (migrated.ok) await auditCheckpoint();
      await rolloutController.stop();
      await reconciler.stop();
      for (const sub of subscriptions) await sub.close().catch(() => undefined);
      await indexer.stop();
      for (const adapter of [broker, search, cache, storage, identity, db]) {
        await adapter.close().catch((err: Error) => log.warn({ err: err.message }, 'adapter close failed'));
      }
    },
  };
  return platform;
}
