import type { Db } from '../infra/db/port.js';
import type { CallContext } from '../../core/context.js';
import type { SearchDoc, SearchIndex } from '../infra/search/port.js';
import type { DatasetSummary } from './model.js';
import { DatasetRepository, type DatasetRow, type VersionRow } from './dataset.repository.js';

/** Every dataset's search document (all projects), for a full reindex. */
export async function* datasetSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  for await (const { dataset, version } of new DatasetRepository(db.kysely).allDatasetsWithLatest())
    yield datasetSearchDoc(dataset, version);
}

/** The search document of a dataset: name, description, classes and tags of its latest version. */
export function datasetSearchDoc(dataset: DatasetRow, version: VersionRow | undefined): SearchDoc {
  const classNames = version === undefined ? [] : (JSON.parse(version.class_names) as string[]);
  return {
    kind: 'dataset',
    id: dataset.id,
    projectId: dataset.project_id,
    title: dataset.name,
    text: [dataset.description, classNames.join(' ')].filter((s) => s !== '').join('\n'),
    tags: JSON.parse(dataset.tags) as string[],
    fields: {
      name: dataset.name,
      latestVersion: dataset.latest_version,
      images: version?.image_count ?? 0,
      classes: classNames.join(','),
    },
    updatedAt: Number(dataset.updated_at),
  };
}

/**
 * Datasets of the caller's project matching `text` through the search port (embedded engine or
 * Elasticsearch: words in the name, description, classes or tags, prefixes and small typos
 * forgiven), best first. Hits are joined with the project's own list, so nothing outside it shows.
 */
export async function searchDatasets(
  ctx: CallContext,
  deps: {
    search: Pick<SearchIndex, 'query'>;
    datasets: { list(ctx: CallContext): Promise<DatasetSummary[]> };
  },
  text: string,
  limit = 50,
): Promise<DatasetSummary[]> {
  const r = await deps.search.query({ text, kinds: ['dataset'], projectId: ctx.projectId, limit });
  const byId = new Map((await deps.datasets.list(ctx)).map((d) => [d.id, d]));
  return r.hits.flatMap((h) => byId.get(h.id) ?? []);
}
