import type { DomainEventBase } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { approvalsReadScope } from './approvals/approval.service.js';
import type { ReadCache } from './infra/cache/read-cache.js';
import { datasetsReadScope, modelsReadScope } from './cached-reads.js';

/** Which read-cache scopes a domain event makes stale: every cached read is listed here with the events that change it. */
export const READ_INVALIDATION: ReadonlyArray<{
  prefix: string;
  scopes: (event: DomainEventBase) => string[];
}> = [
  // approval lists: a request asked for, decided (also edited under four-eyes rules) or consumed
  { prefix: 'approval.', scopes: (e) => [approvalsReadScope(e.projectId)] },
  // dataset summaries and versions: an import, a new version (split, samples, feedback), import progress
  { prefix: 'dataset.', scopes: (e) => [datasetsReadScope(e.projectId)] },
  // model versions: registered, promoted (stages), evaluated
  { prefix: 'model.', scopes: (e) => [modelsReadScope(e.projectId)] },
  // search results are dropped by the indexer once a change reached the index (SearchIndexer onApplied)
];

/** The scopes `event` makes stale. */
export function staleScopes(event: DomainEventBase): string[] {
  return READ_INVALIDATION.filter((rule) => event.type.startsWith(rule.prefix)).flatMap((rule) =>
    rule.scopes(event),
  );
}

/**
 * Invalidates the read cache on the domain events that change what it holds (in this process at
 * once, on other instances through the shared cache). Returns the unsubscribe function.
 */
export function invalidateReadsOn(
  events: { on(listener: (event: DomainEventBase) => void): () => void },
  reads: ReadCache,
  log: Logger,
): () => void {
  return events.on((event) => {
    const scopes = staleScopes(event);
    if (scopes.length === 0) return;
    reads
      .invalidate(...scopes)
      .catch((err: unknown) =>
        log.error(
          { err, scopes, event: event.type },
          'could not invalidate cached reads in the shared cache',
        ),
      );
  });
}
