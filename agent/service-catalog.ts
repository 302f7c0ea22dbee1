import type { CallContext } from '../core/context.js';
import type { ToolServices } from '../tools/services.js';
import type { CatalogDevice, CatalogRollout, PlatformCatalog } from './planner.js';

/** Sources of devices and rollouts, for when fleet services are wired. */
export interface FleetCatalogSource {
  devices(ctx: CallContext): Promise<CatalogDevice[]>;
  rollouts(ctx: CallContext): Promise<CatalogRollout[]>;
}

/** The planners' catalog read from the platform's services; what is not configured is empty. */
export function serviceCatalog(services: ToolServices, fleet?: FleetCatalogSource): PlatformCatalog {
  return {
    datasets: async (ctx) =>
      services.datasets
        ? (await services.datasets.list(ctx)).map((d) => ({ name: d.name, version: d.latestVersion }))
        : [],
    modelVersions: async (ctx) =>
      services.models
        ? (await services.models.list(ctx, { limit: 200 })).map((v) => ({
            id: v.id,
            model: v.name,
            version: v.version,
            stage: v.stages[0] ?? null,
            createdAt: v.createdAt,
          }))
        : [],
    jobs: async (ctx) =>
      services.training
        ? (await services.training.list(ctx, { limit: 100 })).map((j) => ({
            id: j.id,
            dataset: j.dataset,
            status: j.status,
            createdAt: j.createdAt,
          }))
        : [],
    devices: async (ctx) =>
      fleet
        ? fleet.devices(ctx)
        : services.fleet
          ? (await services.fleet.list(ctx)).map((d) => ({ id: d.id, name: d.name, tags: d.tags }))
          : [],
    rollouts: async (ctx) =>
      fleet
        ? fleet.rollouts(ctx)
        : services.rollouts
          ? (await services.rollouts.list(ctx, { limit: 100 })).map((r) => ({
              id: r.id,
              target: 'tag' in r.target ? r.target.tag : r.target.deviceIds.join(','),
              status: r.state,
              modelVersionId: r.model.versionId,
              createdAt: r.createdAt,
            }))
          : [],
  };
}
