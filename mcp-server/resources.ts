import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  ErrorCode,
  McpError,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type ReadResourceResult,
} from '@modelcontextprotocol/sdk/types.js';
import type { CallContext } from '../core/context.js';
import type { DomainEventBase } from '../core/events.js';
import { isPlatformError } from '../core/errors.js';
import type { McpExtra } from './call.js';
import type { McpServices } from './services.js';

/** The URI scheme of every VisionInApp resource. */
export const RESOURCE_SCHEME = 'visioninapp';

/** MCP's "resource not found" code. */
const RESOURCE_NOT_FOUND = -32002;
const JSON_MIME = 'application/json';
const LIST_LIMIT = 200;

/** A PlatformError (or anything) as the protocol error a resource request answers with. */
export function toMcpError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  if (isPlatformError(err)) {
    const code =
      err.code === 'not_found'
        ? RESOURCE_NOT_FOUND
        : err.code === 'invalid_input'
          ? ErrorCode.InvalidParams
          : err.code === 'forbidden' || err.code === 'unauthenticated'
            ? ErrorCode.InvalidRequest
            : ErrorCode.InternalError;
    return new McpError(code, err.message, { code: err.code });
  }
  return new McpError(
    ErrorCode.InternalError,
    `unexpected error: ${err instanceof Error ? err.message : String(err)}`,
  );
}

function json(uri: URL, value: unknown): ReadResourceResult {
  return { contents: [{ uri: uri.href, mimeType: JSON_MIME, text: JSON.stringify(value, null, 2) }] };
}

function one(value: string | string[] | undefined): string {
  const v = Array.isArray(value) ? value[0] : value;
  return decodeURIComponent(v ?? '');
}

async function reading(fn: () => Promise<ReadResourceResult>): Promise<ReadResourceResult> {
  try {
    return await fn();
  } catch (err) {
    throw toMcpError(err);
  }
}

/** The id of the job or rollout a domain event is about, as the resource URI a subscriber follows. */
export function resourceUriOf(event: DomainEventBase): string | undefined {
  const e = event as DomainEventBase & {
    jobId?: string;
    job?: { id?: string };
    rolloutId?: string;
    rollout?: { id?: string };
  };
  if (event.type.startsWith('training.')) {
    const id = e.jobId ?? e.job?.id;
    return id === undefined ? undefined : `${RESOURCE_SCHEME}://jobs/${encodeURIComponent(id)}`;
  }
  if (event.type.startsWith('rollout.')) {
    const id = e.rolloutId ?? e.rollout?.id;
    return id === undefined ? undefined : `${RESOURCE_SCHEME}://rollouts/${encodeURIComponent(id)}`;
  }
  return undefined;
}

const SUBSCRIBABLE = /^visioninapp:\/\/(jobs|rollouts)\/[^/]+$/;
// Metrics arrive per batch; a subscriber hears at most one update per resource in this window.
const COALESCE_MS = 250;

/**
 * Registers datasets, model versions, jobs (with metrics), devices and rollouts as URI-template
 * resources (only those whose service is wired), and `resources/subscribe` for jobs and rollouts:
 * domain events about a subscribed one send `notifications/resources/updated`. Returns the cleanup.
 */
export function registerResources(
  server: McpServer,
  services: McpServices,
  contextOf: (extra: McpExtra) => CallContext,
  projectId: () => string,
  pollMs = 2000,
): () => void {
  const { datasets, training, models, fleet, rollouts } = services;
  if (datasets) {
    server.registerResource(
      'dataset',
      new ResourceTemplate(`${RESOURCE_SCHEME}://datasets/{name}`, {
        list: async (extra) => ({
          resources: (await datasets.list(contextOf(extra))).map((d) => ({
            uri: `${RESOURCE_SCHEME}://datasets/${encodeURIComponent(d.name)}`,
            name: d.name,
            title: `${d.name}@${d.latestVersion}`,
            description: `${d.images} images, ${d.boxes} boxes; classes ${d.classNames.join(', ')}`,
            mimeType: JSON_MIME,
          })),
        }),
      }),
      {
        title: 'Dataset',
        description: 'A dataset (name or name@version) with its latest version, splits and statistics',
        mimeType: JSON_MIME,
      },
      (uri, vars, extra) =>
        reading(async () => json(uri, await datasets.get(contextOf(extra), one(vars.name)))),
    );
  }
  if (models) {
    server.registerResource(
      'model-version',
      new ResourceTemplate(`${RESOURCE_SCHEME}://models/{name}/{version}`, {
        list: async (extra) => ({
          resources: (await models.list(contextOf(extra), { limit: LIST_LIMIT })).map((v) => ({
            uri: `${RESOURCE_SCHEME}://models/${encodeURIComponent(v.name)}/${v.version}`,
            name: `${v.name}@${v.version}`,
            title: `${v.name}@${v.version}${v.stages.length > 0 ? ` (${v.stages.join(', ')})` : ''}`,
            mimeType: JSON_MIME,
          })),
        }),
      }),
      {
        title: 'Model version',
        description:
          'A registered model version: metrics, artifacts, lineage and stages (version may be a number, latest, production, staging or candidate)',
        mimeType: JSON_MIME,
      },
      (uri, vars, extra) =>
        reading(async () =>
          json(uri, await models.get(contextOf(extra), `${one(vars.name)}@${one(vars.version)}`)),
        ),
    );
  }
  if (training) {
    server.registerResource(
      'training-job',
      new ResourceTemplate(`${RESOURCE_SCHEME}://jobs/{id}`, {
        list: async (extra) => ({
          resources: (await training.list(contextOf(extra), { limit: LIST_LIMIT })).map((j) => ({
            uri: `${RESOURCE_SCHEME}://jobs/${encodeURIComponent(j.id)}`,
            name: j.id,
            title: `${j.id} on ${j.dataset} (${j.status})`,
            mimeType: JSON_MIME,
          })),
        }),
      }),
      {
        title: 'Training job',
        description:
          'A training job with its status and per-epoch metrics; subscribe to follow it while it runs',
        mimeType: JSON_MIME,
      },
      (uri, vars, extra) =>
        reading(async () => {
          const ctx = contextOf(extra);
          const id = one(vars.id);
          const [job, metrics] = await Promise.all([training.get(ctx, id), training.metrics(ctx, id)]);
          return json(uri, { job, metrics });
        }),
    );
  }
  if (fleet) {
    server.registerResource(
      'device',
      new ResourceTemplate(`${RESOURCE_SCHEME}://devices/{id}`, {
        list: async (extra) => ({
          resources: (await fleet.list(contextOf(extra))).map((d) => ({
            uri: `${RESOURCE_SCHEME}://devices/${encodeURIComponent(d.id)}`,
            name: d.id,
            title: d.name,
            mimeType: JSON_MIME,
          })),
        }),
      }),
      {
        title: 'Edge device',
        description: 'An edge device: tags, model it runs, health and last heartbeat',
        mimeType: JSON_MIME,
      },
      (uri, vars, extra) => reading(async () => json(uri, await fleet.get(contextOf(extra), one(vars.id)))),
    );
  }
  if (rollouts) {
    server.registerResource(
      'rollout',
      new ResourceTemplate(`${RESOURCE_SCHEME}://rollouts/{id}`, {
        list: async (extra) => ({
          resources: (await rollouts.list(contextOf(extra), { limit: LIST_LIMIT })).map((r) => ({
            uri: `${RESOURCE_SCHEME}://rollouts/${encodeURIComponent(r.id)}`,
            name: r.id,
            title: `${r.id} (${r.state})`,
            mimeType: JSON_MIME,
          })),
        }),
      }),
      {
        title: 'Rollout',
        description:
          'A rollout of a model version to a device group: waves, per-device state, gates; subscribe to follow it',
        mimeType: JSON_MIME,
      },
      (uri, vars, extra) =>
        reading(async () => json(uri, await rollouts.status(contextOf(extra), one(vars.id)))),
    );
  }

  const subscribed = new Set<string>();
  const timers = new Map<string, NodeJS.Timeout>();
  server.server.setRequestHandler(SubscribeRequestSchema, (request) => {
    const uri = request.params.uri;
    if (!SUBSCRIBABLE.test(uri)) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `only running jobs and rollouts can be followed (visioninapp://jobs/{id}, visioninapp://rollouts/{id}); got ${uri}`,
      );
    }
    subscribed.add(uri);
    // The state at subscription time is the baseline the poll compares against.
    fingerprint(uri)
      .then((f) => {
        if (f !== undefined && !seen.has(uri)) seen.set(uri, f);
      })
      .catch(() => undefined);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    subscribed.delete(request.params.uri);
    seen.delete(request.params.uri);
    return {};
  });
  // Domain events reach only this process; a poll of subscribed resources covers changes made by
  // other instances or processes (a stdio server beside `visioninapp serve`, several servers).
  const seen = new Map<string, string>();
  const notify = (uri: string) => {
    if (subscribed.has(uri)) server.server.sendResourceUpdated({ uri }).catch(() => undefined);
  };
  const poller = setInterval(() => {
    for (const uri of subscribed) {
      fingerprint(uri)
        .then((now) => {
          if (now === undefined) return;
          const before = seen.get(uri);
          seen.set(uri, now);
          if (before !== undefined && before !== now && !timers.has(uri)) notify(uri);
        })
        .catch(() => undefined);
    }
  }, pollMs);
  poller.unref();
  async function fingerprint(uri: string): Promise<string | undefined> {
    const m = /^visioninapp:\/\/(jobs|rollouts)\/([^/]+)$/.exec(uri);
    if (m === null) return undefined;
    const ctx = contextOf({ signal: new AbortController().signal } as McpExtra);
    const id = decodeURIComponent(m[2]!);
    if (m[1] === 'jobs' && training) {
      const [job, metrics] = await Promise.all([training.get(ctx, id), training.metrics(ctx, id)]);
      return JSON.stringify([job.status, job.attempt, metrics.length, metrics.at(-1)]);
    }
    if (m[1] === 'rollouts' && rollouts) return JSON.stringify(await rollouts.status(ctx, id));
    return undefined;
  }

  const off = services.events.on((event) => {
    if (subscribed.size === 0 || event.projectId !== projectId()) return;
    const uri = resourceUriOf(event);
    if (uri === undefined || !subscribed.has(uri) || timers.has(uri)) return;
    timers.set(
      uri,
      setTimeout(() => {
        timers.delete(uri);
        notify(uri);
      }, COALESCE_MS),
    );
  });
  return () => {
    off();
    clearInterval(poller);
    seen.clear();
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    subscribed.clear();
  };
}
