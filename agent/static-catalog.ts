import type {
  CatalogDataset,
  CatalogDevice,
  CatalogJob,
  CatalogModelVersion,
  CatalogRollout,
  PlatformCatalog,
} from './planner.js';

/** The contents of a StaticCatalog. */
export interface StaticCatalogData {
  datasets?: CatalogDataset[];
  modelVersions?: CatalogModelVersion[];
  devices?: CatalogDevice[];
  jobs?: CatalogJob[];
  rollouts?: CatalogRollout[];
}

/** A catalog of fixed names: what evaluation scenarios plan against. */
export class StaticCatalog implements PlatformCatalog {
  constructor(private readonly data: StaticCatalogData) {}

  async datasets() {
    return this.data.datasets ?? [];
  }

  async modelVersions() {
    return this.data.modelVersions ?? [];
  }

  async devices() {
    return this.data.devices ?? [];
  }

  async jobs() {
    return this.data.jobs ?? [];
  }

  async rollouts() {
    return this.data.rollouts ?? [];
  }
}
