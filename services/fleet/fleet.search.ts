import type { Selectable } from 'kysely';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { SearchDoc } from '../infra/search/port.js';

/** A device row. */
export type DeviceRow = Selectable<Database['devices']>;

/** What a device's search document is built from: a change elsewhere (a heartbeat) needs no reindex. */
export function searchSignature(r: DeviceRow): string {
  return JSON.stringify([r.name, r.tags, r.hardware, r.provider, r.model_version_id, r.state, r.runtime]);
}

/** The search document of a device (kind `device`). */
export function deviceSearchDoc(r: DeviceRow): SearchDoc {
  const tags = JSON.parse(r.tags) as string[];
  return {
    kind: 'device',
    id: r.id,
    projectId: r.project_id,
    title: r.name,
    text: [
      r.id,
      r.hardware,
      r.provider,
      Object.entries(JSON.parse(r.runtime) as Record<string, string>)
        .map(([k, v]) => `${k} ${v}`)
        .join(' '),
    ].join(' '),
    tags,
    fields: {
      state: r.state,
      provider: r.provider,
      hardware: r.hardware.slice(0, 200),
      ...(r.model_version_id === null ? {} : { modelVersionId: r.model_version_id }),
    },
    updatedAt: Number(r.updated_at),
  };
}

/** Every device as a search document, for a full reindex. */
export async function* deviceSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  let after = '';
  for (;;) {
    const rows = await db.kysely
      .selectFrom('devices')
      .selectAll()
      .where('id', '>', after)
      .orderBy('id')
      .limit(500)
      .execute();
    for (const r of rows) yield deviceSearchDoc(r);
    if (rows.length < 500) return;
    after = rows[rows.length - 1]!.id;
  }
}
