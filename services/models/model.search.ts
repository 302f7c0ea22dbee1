import type { Db } from '../infra/db/port.js';
import type { SearchDoc } from '../infra/search/port.js';
import type { ModelVersion } from './model.js';
import { ModelRepository, rowToVersion } from './model.repository.js';

/** Every model version as a search document, for a full reindex. */
export async function* modelSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  const repo = new ModelRepository(db.kysely, db.dialect);
  let offset = 0;
  for (;;) {
    const rows = await repo.page(offset, 500);
    for (const row of rows) {
      const stages = await repo.stageList(row.id);
      yield modelSearchDoc(rowToVersion(row, stages));
    }
    if (rows.length < 500) return;
    offset += rows.length;
  }
}

/** The search document of a version (kind `model`, id = version id). */
export function modelSearchDoc(v: ModelVersion): SearchDoc {
  const fields: Record<string, string | number | boolean> = {
    name: v.name,
    version: v.version,
    layout: v.model.layout,
  };
  if (v.lineage.dataset !== null) fields.dataset = v.lineage.dataset;
  if (v.lineage.jobId !== null) fields.jobId = v.lineage.jobId;
  for (const [k, val] of Object.entries(v.metrics))
    if (Number.isFinite(val) && k.length <= 100) fields[k] = val;
  const backend = (v.lineage.config as { backend?: unknown }).backend;
  return {
    kind: 'model',
    id: v.id,
    projectId: v.projectId,
    title: v.ref,
    text: [
      v.name,
      v.lineage.dataset ?? '',
      typeof backend === 'string' ? backend : '',
      v.classNames.join(' '),
    ]
      .filter(Boolean)
      .join(' '),
    tags: [...v.stages, ...v.classNames.slice(0, 50).filter((c) => c.length > 0 && c.length <= 100)],
    fields,
    updatedAt: v.createdAt,
  };
}
